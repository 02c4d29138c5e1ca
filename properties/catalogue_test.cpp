// Proves the written catalogue cannot drift from the code: every fault site,
// mutant and rare state named in the source is listed in its C++ catalogue
// (aegis::fault_sites, aegis::mutants, aegis::coverage_points, test-side in
// testing/aegis/), every catalogued name is used in the source (by grep, so a
// site deleted from production fails here), and docs/FAULTS.md documents
// every one of them. It also proves production carries the site macros
// alone: no catalogue, and no name of a test file, in src/ or faults/.
// Rerun with: build/release/properties/catalogue_test
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "aegis/coverage.hpp"
#include "aegis/fault_catalogue.hpp"
#include "aegis/mutant_catalogue.hpp"

namespace {

namespace fs = std::filesystem;
const fs::path source_dir = AEGIS_SOURCE_DIR;

std::string read_file(const fs::path& p) {
  std::ifstream in{p};
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Every first string argument of `macro(` calls in the C++ files under `dirs`.
std::set<std::string> names_used(const std::string& pattern, std::initializer_list<const char*> dirs) {
  std::set<std::string> out;
  const std::regex re{pattern};
  for (const char* d : dirs) {
    for (const auto& entry : fs::directory_iterator(source_dir / d)) {
      const std::string ext = entry.path().extension().string();
      if (ext != ".hpp" && ext != ".cpp" && ext != ".py") continue;
      const std::string text = read_file(entry.path());
      for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
        out.insert((*it)[1].str());
      }
    }
  }
  return out;
}

TEST(Catalogue, FaultSitesInSourceMatchTheCatalogueAndTheDocs) {
  const std::set<std::string> used = names_used(R"re(AEGIS_FAULT\(\s*(?:env_?|out)\s*,\s*"([^"]+)"\))re", {"src/aegis", "src/core"});
  std::set<std::string> listed(aegis::fault_sites.begin(), aegis::fault_sites.end());
  EXPECT_EQ(used, listed) << "AEGIS_FAULT sites in src/ and aegis::fault_sites differ";
  const std::string doc = read_file(source_dir / "docs/FAULTS.md");
  for (const auto& name : listed) EXPECT_NE(doc.find("`" + name + "`"), std::string::npos) << name << " not in docs/FAULTS.md";
}

TEST(Catalogue, MutantsInSourceMatchTheCatalogueAndTheDocs) {
  const std::set<std::string> used = names_used(R"re(AEGIS_MUTANT\(\s*(?:env_?|out)\s*,\s*"([^"]+)"\))re", {"src/aegis"});
  std::set<std::string> listed;
  for (const auto& m : aegis::mutants) listed.insert(std::string(m.name));
  EXPECT_EQ(used, listed) << "AEGIS_MUTANT sites in src/ and aegis::mutants differ";
  const std::string doc = read_file(source_dir / "docs/FAULTS.md");
  for (const auto& name : listed) EXPECT_NE(doc.find("`" + name + "`"), std::string::npos) << name << " not in docs/FAULTS.md";
}

TEST(Catalogue, BridgeMutantsMatchTheBridgeAndTheDocs) {
  // The Python bridge names its mutants in MUTANT_* constants (MUTANT_ENV is the variable that picks one).
  const std::set<std::string> used = names_used(R"re(\nMUTANT_(?!ENV)[A-Z_]+ = "([^"]+)")re", {"src/aegis_bridge"});
  std::set<std::string> listed;
  for (const auto& m : aegis::bridge_mutants) listed.insert(std::string(m.name));
  EXPECT_EQ(used, listed) << "MUTANT_* names in src/aegis_bridge and aegis::bridge_mutants differ";
  const std::string doc = read_file(source_dir / "docs/FAULTS.md");
  for (const auto& name : listed) EXPECT_NE(doc.find("`" + name + "`"), std::string::npos) << name << " not in docs/FAULTS.md";
}

TEST(Catalogue, RareStatesInSourceMatchTheCatalogueAndTheDocs) {
  std::set<std::string> used = names_used(R"re(AEGIS_SOMETIMES\(\s*(?:env_?|out)\s*,\s*"([^"]+)"\))re", {"src/aegis"});
  for (const auto& n : names_used(R"re(reached\("([^"]+)"\))re", {"sim", "properties"})) used.insert(n);
  std::set<std::string> listed;
  const std::string doc = read_file(source_dir / "docs/FAULTS.md");
  for (const auto& p : aegis::coverage_points) {
    listed.insert(std::string(p.name));
    const std::string reporter = read_file(source_dir / p.reported_by);
    EXPECT_NE(reporter.find("\"" + std::string(p.name) + "\""), std::string::npos)
        << p.name << " is not reported by " << p.reported_by;
    EXPECT_NE(doc.find("`" + std::string(p.name) + "`"), std::string::npos) << p.name << " not in docs/FAULTS.md";
  }
  EXPECT_EQ(used, listed) << "rare states reported in the source and aegis::coverage_points differ";
}

TEST(Catalogue, ProductionCarriesSitesButNoCatalogue) {
  // The catalogues live in testing/ (docs/LAYERS.md); scripts/check_layers.py
  // keeps production from including them, and this keeps one from being
  // written back into a production header.
  const std::regex catalogue{R"re(\b(fault_sites|mutants|coverage_points)\s*=)re"};
  const std::regex test_path{R"re("(sim|properties|bench|fuzz|testing|fixtures)/)re"};
  for (const char* d : {"faults/aegis", "src/aegis", "src/core"}) {
    for (const auto& entry : fs::directory_iterator(source_dir / d)) {
      const std::string name = entry.path().filename().string();
      if (name.ends_with("_test.cpp") || (entry.path().extension() != ".hpp" && entry.path().extension() != ".cpp")) continue;
      const std::string text = read_file(entry.path());
      EXPECT_FALSE(std::regex_search(text, catalogue)) << entry.path() << " defines a test catalogue";
      EXPECT_FALSE(std::regex_search(text, test_path)) << entry.path() << " names a test-side file";
    }
  }
}

}  // namespace
