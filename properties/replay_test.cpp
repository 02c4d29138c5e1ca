// Proves a failure's printed replay line is the one command that reproduces
// it: a property search against a mutant fails and shrinks; the test takes the
// `replay: aegis-sim replay --schedule '...'` line out of the printed failure,
// runs it as a separate process, and checks the same exit code, the same
// failure text and the same trace hash. A second case checks `--trace` on
// replay writes a trace and leaves the hash unchanged.
// Rerun with: build/release/properties/replay_test
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>
#include <sys/wait.h>

#include "properties/mutant_search.hpp"

namespace {

using aegis::admission;

struct command_output {
  int exit_code = -1;
  std::string out;
};

command_output run_shell(const std::string& cmd) {
  command_output r;
  std::FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  return r;
}

std::string replay_line_of(const std::string& printed) {
  const std::size_t at = printed.find("replay: ");
  if (at == std::string::npos) return {};
  const std::size_t end = printed.find('\n', at);
  return printed.substr(at + 8, end == std::string::npos ? std::string::npos : end - at - 8);
}

TEST(Replay, PrintedReplayLineReproducesTheFailureAndTraceHash) {
  const aegis::props::search_result r =
      aegis::props::search_scenarios("release_on_send", {.mode = admission::block}, 30, 0x7e57, 4.0);
  ASSERT_TRUE(r.caught) << "the mutant must fail for this test to mean anything";
  ASSERT_TRUE(r.minimal_result.has_value());
  const std::string line = replay_line_of(r.description);
  ASSERT_FALSE(line.empty()) << "no replay line in:\n" << r.description;
  std::cout << "printed failure:\n" << r.description << "running: " << line << "\n";

  const command_output out = run_shell(line);
  const aegis::sim::checked_result& want = *r.minimal_result;
  EXPECT_EQ(out.exit_code, want.exit_code) << out.out;
  EXPECT_NE(out.out.find(fmt::format("replay_result exit={} trace_hash={:016x}", want.exit_code, want.trace_hash)),
            std::string::npos)
      << "replay did not give exit " << want.exit_code << " and trace_hash " << fmt::format("{:016x}", want.trace_hash)
      << ":\n" << out.out;
  // The failure's words, up to the first newline (the runner appends the event).
  const std::string first_line = want.failure.substr(0, want.failure.find('\n'));
  EXPECT_NE(out.out.find(first_line), std::string::npos) << "replay failed differently; expected '" << first_line
                                                         << "' in:\n" << out.out;
}

TEST(Replay, TraceOptionWritesATraceAndKeepsTheHash) {
  const aegis::sim::scenario s = aegis::props::sample(aegis::props::gen_scenario({.mode = admission::drop}), 11);
  const aegis::sim::checked_result want = aegis::sim::run_checked_isolated(s);
  const std::filesystem::path trace = std::filesystem::temp_directory_path() / fmt::format("aegis-replay-{}.json", ::getpid());
  const command_output out = run_shell(aegis::sim::replay_command(s) + " --trace " + trace.string());
  EXPECT_EQ(out.exit_code, want.exit_code) << out.out;
  EXPECT_NE(out.out.find(fmt::format("trace_hash={:016x}", want.trace_hash)), std::string::npos) << out.out;
  EXPECT_TRUE(std::filesystem::exists(trace) && std::filesystem::file_size(trace) > 100) << trace;
  std::filesystem::remove(trace);
}

}  // namespace
