#include "jobs/checkpoint_model.h"

#include <sstream>

#include <boost/program_options.hpp>

#include "core/check.h"
#include "data/hdf5_checkpoint.h"
#include "data/hdf5_file.h"
#include "jobs/cli_options.h"

namespace rw {

std::unique_ptr<LlamaModel> load_checkpoint_model(const std::string& path) {
  namespace po = boost::program_options;
  const CheckpointMeta meta = read_checkpoint_meta(path);
  // The saved configuration names a data file that need not exist here; it is dropped before the
  // configuration is validated.
  std::istringstream ini(meta.config_text);
  po::variables_map vm;
  RunConfig run;
  try {
    po::store(po::parse_config_file(ini, run_options(), true), vm);
    vm.erase("data");
    run = resolve_run_config(vm);
  } catch (const po::error& e) {
    throw UserError(path + ": attribute config: " + e.what());
  } catch (const UserError& e) {
    throw UserError(path + ": attribute config: " + e.what());
  }
  auto model = std::make_unique<LlamaModel>(run.model);
  const h5::File file = h5::File::open(path);
  for (const ParamInfo& p : model->params().entries()) file.read<float>("/" + p.name, model->param(p.name), p.shape);
  return model;
}

}  // namespace rw
