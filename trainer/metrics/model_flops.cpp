#include "trainer/metrics/model_flops.hpp"

#include <algorithm>
#include <fstream>
#include <string>
#include <thread>


namespace kiln::metrics {

double model_flops_utilisation(double flops_per_token, double tokens_per_second, double peak_flops) {
  return peak_flops > 0 ? flops_per_token * tokens_per_second / peak_flops : 0.0;
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
  if (megahertz <= 0) return 0.0;
  // Two FMA pipes, 2 FLOPs per FMA, 8 (AVX2) or 16 (AVX-512) floats per vector.
  const double per_cycle = avx512 ? 64.0 : (avx2 && fma ? 32.0 : 8.0);
  const unsigned available = std::max(1u, std::thread::hardware_concurrency());
  const unsigned cores = threads > 0 ? std::min<unsigned>(static_cast<unsigned>(threads), available) : available;
  return cores * megahertz * 1e6 * per_cycle;
}

}  // namespace kiln::metrics
