// Must NOT compile: the scheduler layer includes the server layer above it.
// CTest builds this on purpose (layers_forbid_upward_includes) and passes only
// when the compiler cannot find the header: proof that the per-folder targets
// keep includes pointing down the layers (CMakeLists.txt, berth_library).
#include "scheduler/instance_pool.h"  // its own layer: found
#include "server/inference_server.h"  // a layer above: must not be found
