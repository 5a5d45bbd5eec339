// `kiln <verb> ...`: the single entry point (DESIGN.md §10).
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "kernels/cpu/blas_kernels.hpp"
#include "kernels/device.hpp"
#include "parallel/mpi_environment.hpp"
#include "trainer/cli/command.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/version.hpp"
#include "trainer/train/cuda_device.hpp"

namespace {

std::string version_text() {
  std::string why_no_gpu;
  const auto devices = kiln::kernels::cuda_devices(&why_no_gpu);
  std::string text = fmt::format("kiln {} (CUDA backend: {}, MPI: {}, OpenBLAS kernels: {}, threads: {})",
                                 kiln::kVersion, kiln::kBuiltWithCuda ? "built" : "not built",
                                 kiln::kBuiltWithMpi ? "built" : "not built", kiln::kernels::blas_kernel_name(),
                                 kiln::kernels::blas_threading());
  text += fmt::format("\nCUDA backends: {}", kiln::train::cuda_backends_built());
  text += fmt::format("\nCUDA libraries: {}", kiln::kernels::cuda_library_versions());
  if (devices.empty()) {
    text += fmt::format("\nGPUs: none ({})", why_no_gpu);
  }
  for (const auto& device : devices) {
    text += fmt::format("\nGPU {}: {} (sm_{}{}, {:.0f} GiB)", device.index, device.name,
                        device.compute_major, device.compute_minor, device.memory_gib);
  }
  return text;
}

int run(int argc, char** argv) {
  CLI::App app{"kiln: curate, tokenize, prepare and train language models"};
  app.set_version_flag("--version", version_text);
  app.require_subcommand(1);
  kiln::cli::add_corpus_command(app);
  kiln::cli::add_curate_command(app);
  kiln::cli::add_tokenizer_command(app);
  kiln::cli::add_prepare_command(app);
  kiln::cli::add_train_command(app);
  kiln::cli::add_eval_command(app);
  kiln::cli::add_generate_command(app);
  kiln::cli::add_import_command(app);
  kiln::cli::add_export_command(app);
  kiln::cli::add_score_command(app);
  kiln::cli::add_info_command(app);
  kiln::cli::add_plan_command(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}

}  // namespace

// A rank that fails alone would leave the others waiting on it forever.
int fail_job(int status) {
  const auto& mpi = kiln::parallel::MpiEnvironment::instance();
  if (mpi.distributed()) mpi.abort(status);
  return status;
}

int main(int argc, char** argv) {
  kiln::kernels::select_blas_kernels(argv);
  try {
    return run(argc, argv);
  } catch (const kiln::Error& error) {
    std::fprintf(stderr, "kiln: error: %s\n", error.what());
    return fail_job(1);
  } catch (const std::bad_alloc&) {
    // Inputs are checked against the sizes of the files they come with before kiln allocates
    // for them, so this is a machine too small for a valid input (or a check kiln lacks).
    std::fprintf(stderr, "kiln: error: out of memory: this machine cannot hold what the input asks for\n");
    return fail_job(1);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "kiln: internal error: %s\n", error.what());
    return fail_job(3);
  }
}
