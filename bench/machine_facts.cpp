// The machine facts every `make bench` figure depends on, measured in the
// same run: the CPU, the clock source, the kernel, and what one system call
// and one clock read cost. On these VMs a system call costs 0.1 us on one
// host and 1 us on another, which moves every end-to-end row; the README's
// figures name this line.
//
// Usage: machine_facts [--json FILE] [--calls N] [--reps R]
//   prints: machine: <cpu> | <n> CPUs | clocksource <c> | kernel <k> | getpid <ns> | clock_gettime <ns>
//   appends rows machine/syscall_getpid and machine/clock_gettime to FILE.
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <fmt/core.h>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "aegis/bench_results.hpp"

namespace {

std::string first_line_of(const std::string& path) {
  std::ifstream in{path};
  std::string line;
  if (!in || !std::getline(in, line)) return "?";
  return line;
}

std::string cpuinfo_field(const std::string& key) {
  std::ifstream in{"/proc/cpuinfo"};
  const std::regex re{"^" + key + "\\s*:\\s*(.*)$"};
  std::smatch m;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_match(line, m, re)) return m[1].str();
  }
  return "?";
}

// Median over `reps` of the mean cost of one call of `f`, in ns.
template <class F>
double median_ns_per_call(int reps, long calls, F&& f) {
  std::vector<double> per_call;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < calls; ++i) f();
    const auto t1 = std::chrono::steady_clock::now();
    per_call.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(calls));
  }
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The machine facts behind a make bench run: CPU, clock source, system-call and clock-read cost"};
  std::string json;
  long calls = 1'000'000;
  int reps = 5;
  app.add_option("--json", json, "append rows to this bench-results.json");
  app.add_option("--calls", calls, "calls per repetition")->check(CLI::Range(1000L, 100'000'000L));
  app.add_option("--reps", reps, "repetitions; the figure is their median")->check(CLI::Range(1, 101));
  CLI11_PARSE(app, argc, argv);

  // syscall(2) directly: glibc may cache or vDSO-route other cheap calls.
  const double getpid_ns = median_ns_per_call(reps, calls, [] { (void)syscall(SYS_getpid); });
  volatile long sink = 0;
  const double clock_ns = median_ns_per_call(reps, calls, [&] {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sink = sink + ts.tv_nsec;
  });

  utsname u{};
  uname(&u);
  const std::string cpu = cpuinfo_field("model name");
  const std::string family = cpuinfo_field("cpu family");
  const std::string clocksource = first_line_of("/sys/devices/system/clocksource/clocksource0/current_clocksource");
  fmt::print("machine: {} (family {}) | {} CPUs | clocksource {} | kernel {} | getpid {:.0f} ns | clock_gettime {:.0f} ns\n",
             cpu, family, std::thread::hardware_concurrency(), clocksource, u.release, getpid_ns, clock_ns);

  if (!json.empty()) {
    using aegis::bench::better;
    aegis::bench::append_results(
        json, {{"machine", "syscall_getpid", "ns", getpid_ns, "clock_gettime (vDSO)", clock_ns, better::lower},
               {"machine", "clock_gettime", "ns", clock_ns, "none (reported)", 0.0, better::lower}});
  }
  return 0;
}
