#include "trainer/metrics/model_flops.hpp"

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>

namespace kiln::metrics {

double model_flops_utilisation(double flops_per_token, double tokens_per_second, double peak_flops) {
  return peak_flops > 0 ? flops_per_token * tokens_per_second / peak_flops : 0.0;
}

namespace {

double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// Cycles per second of one run of `adds` dependent adds. Register-register adds: newer cores
// fold add-immediate chains in the renamer, which would count several adds per cycle.
double time_add_chain([[maybe_unused]] std::uint64_t iterations) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  std::uint64_t value = 0, remaining = iterations;
  const std::uint64_t increment = 3;
  const double start = thread_cpu_seconds();
  asm volatile(
      "1:\n\t"
      "add %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\t"
      "add %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\t"
      "dec %1\n\tjnz 1b\n"
      : "+r"(value), "+r"(remaining)
      : "r"(increment));
  const double seconds = thread_cpu_seconds() - start;
  return seconds > 0 ? 8.0 * static_cast<double>(iterations) / seconds : 0.0;
#else
  return 0.0;
#endif
}

}  // namespace

double measured_cpu_clock_hz() {
  static const double hz = [] {
    double best = 0;
    for (int run = 0; run < 3; ++run) best = std::max(best, time_add_chain(4'000'000));
    return best;
  }();
  return hz;
}

double gpu_bf16_peak_flops(std::string_view device_name) {
  // Longest names first, so "H100 PCIe" is not read as an H100 SXM.
  struct Peak {
    std::string_view name;
    double flops;
  };
  static constexpr Peak kPeaks[] = {{"H100 PCIe", 756e12}, {"H100 NVL", 835e12}, {"H100", 989e12}, {"H200", 989e12},
                                    {"H800", 989e12},       {"GH200", 989e12},    {"A100", 312e12}, {"A800", 312e12},
                                    {"L40S", 362e12}};
  for (const Peak& peak : kPeaks)
    if (device_name.find(peak.name) != std::string_view::npos) return peak.flops;
  return 0.0;
}

double estimate_cpu_peak_flops(int threads) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  double megahertz = 0;
  bool avx2 = false, fma = false, avx512 = false;
  for (std::string line; std::getline(cpuinfo, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string value = line.substr(colon + 1);
    if (line.starts_with("cpu MHz")) {
      megahertz = std::max(megahertz, std::stod(value));
    } else if (line.starts_with("flags")) {
      avx2 = value.find(" avx2") != std::string::npos;
      fma = value.find(" fma") != std::string::npos;
      avx512 = value.find(" avx512f") != std::string::npos;
    }
  }
  const double measured = measured_cpu_clock_hz();
  const double hz = measured > 0 ? measured : megahertz * 1e6;
  if (hz <= 0) return 0.0;
  // Two FMA pipes, 2 FLOPs per FMA, 8 (AVX2) or 16 (AVX-512) floats per vector.
  const double per_cycle = avx512 ? 64.0 : (avx2 && fma ? 32.0 : 8.0);
  const unsigned available = std::max(1u, std::thread::hardware_concurrency());
  const unsigned cores = threads > 0 ? std::min<unsigned>(static_cast<unsigned>(threads), available) : available;
  return cores * hz * per_cycle;
}

}  // namespace kiln::metrics
