#include "trainer/cli/command.hpp"

namespace kiln::cli {

void add_corpus_command(CLI::App& app) { (void)app; }

}  // namespace kiln::cli
