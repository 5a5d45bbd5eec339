#include "trainer/cli/command.hpp"

namespace kiln::cli {

void add_info_command(CLI::App& app) { (void)app; }

}  // namespace kiln::cli
