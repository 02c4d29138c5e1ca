// Proves the aegis-core binary keeps its documented contract (docs/SUMMARY.md)
// as a real process: it creates the endpoint directory 0700, prints the
// endpoints, finishes a --count run against an in-process fake bridge with
// exit 0 and a summary JSON holding every documented key with a holding
// identity, writes one ledger line per offered id, refuses a second core on
// the same directory (exit 3, before binding), rejects bad flags (exit 2),
// and drains and exits cleanly on SIGTERM. Every wait has a deadline that
// fails the test.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <zmq.hpp>

#include "aegis/protocol.hpp"
#include "aegis/test_bridge.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "aegis-core-test-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~temp_dir() { fs::remove_all(path); }
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A spawned aegis-core with stdout/stderr in files.
struct core_process {
  pid_t pid = -1;
  fs::path out, err;
  core_process(const fs::path& log_dir, std::vector<std::string> args) : out(log_dir / "out.txt"), err(log_dir / "err.txt") {
    args.insert(args.begin(), AEGIS_CORE_BINARY);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    EXPECT_EQ(posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
  }
  // Exit code, or -1 if it did not exit within `timeout` (then it is killed).
  int wait(std::chrono::milliseconds timeout = 20000ms) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (std::chrono::steady_clock::now() < end) {
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(5ms);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    pid = -1;
    return -1;
  }
  bool wait_for_output(const std::string& needle, std::chrono::milliseconds timeout = 10000ms) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (slurp(out).find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }
  ~core_process() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
};

// The shared scripted bridge (fixtures/aegis/test_bridge.hpp) as these tests
// run it: one HELLO first, no heartbeats, every TXN frame answered with
// score 0.1 and decision 0.
aegis::testing::test_bridge_options answering_at(const fs::path& dir) {
  aegis::testing::test_bridge_options o;
  o.endpoint_dir = dir;
  o.incarnation = 0xB0B;
  o.score = 0.1f;
  o.decision = 0;
  return o;
}

struct answering_bridge : aegis::testing::test_bridge {
  explicit answering_bridge(const fs::path& dir) : test_bridge(answering_at(dir), answer_every_frame) {}
};

TEST(CoreProcess, CountRunAgainstABridgeKeepsTheSummaryContract) {
  temp_dir tmp;
  const fs::path dir = tmp.path / "endpoints";
  answering_bridge bridge(dir);  // Connects before the core binds: ZeroMQ retries.
  core_process core(tmp.path, {"--endpoint-dir", dir.string(), "--count", "20000", "--high-risk-share", "0.5",
                               "--summary-json", (tmp.path / "s.json").string(), "--ledger", (tmp.path / "l.txt").string()});
  ASSERT_EQ(core.wait(), 0) << slurp(core.err);
  EXPECT_EQ(fs::status(dir).permissions() & fs::perms::all, fs::perms::owner_all);
  const std::string out = slurp(core.out);
  EXPECT_NE(out.find("offload: ipc://" + (dir / "offload.sock").string() + "\n"), std::string::npos) << out;
  EXPECT_NE(out.find("verdicts: ipc://" + (dir / "verdicts.sock").string() + "\n"), std::string::npos) << out;

  const auto s = nlohmann::json::parse(slurp(tmp.path / "s.json"));
  for (const char* key : {"mode", "offered", "accepted", "dropped", "verdicts", "expired", "in_flight", "lost",
                          "duplicate_verdicts", "rejected_frames", "retransmits", "bridge_incarnations", "latency_us",
                          "throughput_per_s", "epoch", "drained", "identity_ok", "exit_code", "generated"}) {
    EXPECT_TRUE(s.contains(key)) << key;
  }
  for (const char* key : {"p50", "p99", "p999", "max"}) EXPECT_TRUE(s["latency_us"].contains(key)) << key;
  for (const char* key : {"ring_full", "timeout", "closed"}) EXPECT_TRUE(s["dropped"].contains(key)) << key;
  EXPECT_EQ(s["rejected_frames"].size(), aegis::reject_reason_count);
  const auto offered = s["offered"].get<std::uint64_t>();
  EXPECT_EQ(s["generated"].get<std::uint64_t>(), 20000u);
  EXPECT_GT(offered, 9000u);
  EXPECT_LT(offered, 11000u) << "the risk rule offers about half";
  EXPECT_EQ(s["verdicts"].get<std::uint64_t>(), offered);
  EXPECT_EQ(s["accepted"].get<std::uint64_t>(), offered);
  EXPECT_EQ(s["lost"].get<std::uint64_t>(), 0u);
  EXPECT_TRUE(s["identity_ok"].get<bool>());
  EXPECT_TRUE(s["drained"].get<bool>());
  EXPECT_NE(s["epoch"].get<std::uint64_t>(), 0u);

  std::ifstream ledger(tmp.path / "l.txt");
  std::uint64_t lines = 0, prev = 0, id = 0;
  std::string fate;
  while (ledger >> id >> fate) {
    EXPECT_GT(id, prev) << "ascending ids";
    EXPECT_LE(id, 20000u);
    EXPECT_EQ(fate, "verdict");
    prev = id;
    ++lines;
  }
  EXPECT_EQ(lines, offered);
}

TEST(CoreProcess, RefusesASecondCoreOnTheSameDirectory) {
  temp_dir tmp;
  const fs::path dir = tmp.path / "d";
  fs::create_directory(tmp.path / "a");
  fs::create_directory(tmp.path / "b");
  // Runs until signalled; with no bridge its ring fills and stays full.
  core_process first(tmp.path / "a", {"--endpoint-dir", dir.string(), "--ring-capacity", "64", "--drain-timeout", "300ms"});
  ASSERT_TRUE(first.wait_for_output("pid: ")) << slurp(first.err);
  core_process second(tmp.path / "b", {"--endpoint-dir", dir.string(), "--count", "1"});
  EXPECT_EQ(second.wait(), 3);
  EXPECT_NE(slurp(second.err).find("another aegis-core"), std::string::npos) << slurp(second.err);
  EXPECT_EQ(slurp(second.out).find("offload:"), std::string::npos) << "it never bound";
  // SIGTERM releases the producer blocked on the full ring (dropped_closed),
  // the drain times out with 64 accepted and unverdicted: block mode, lost > 0, exit 5.
  ASSERT_EQ(kill(first.pid, SIGTERM), 0);
  EXPECT_EQ(first.wait(), 5) << slurp(first.err);
  EXPECT_NE(slurp(first.out).find("by signal"), std::string::npos);
}

TEST(CoreProcess, RejectsBadFlagsWithOneLineAndExitTwo) {
  temp_dir tmp;
  for (std::vector<std::string> args : {std::vector<std::string>{"--endpoint-dir", "x", "--mode", "maybe"},
                                        {"--endpoint-dir", "x", "--ttl", "5x"},
                                        {"--endpoint-dir", "x", "--ring-capacity", "1000"},
                                        {"--endpoint-dir", "x", "--count", "5", "--duration", "1s"},
                                        {"--mode", "drop"}}) {
    core_process p(tmp.path, args);
    EXPECT_EQ(p.wait(), 2) << args.back();
    const std::string err = slurp(p.err);
    EXPECT_EQ(err.rfind("aegis-core: ", 0), 0u) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  }
}

}  // namespace
