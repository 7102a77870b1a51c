// Loading `kind: pipeline` models: model.yaml's steps checked against the
// step models that serve now (each input wired, datatypes equal, shapes
// compatible, rows passed through, outputs that may be absent marked
// optional), the pipeline's outputs typed from the steps, and a
// PipelineScheduler built.
#pragma once

#include "repository/model_loader.h"
#include "server/inference_server.h"

namespace berth {

// The factory for InferenceServer::RegisterKind(kPipelineModelKind, ...).
// `server` outlives every pipeline it loads.
ModelLoader::SchedulerFactory PipelineKind(InferenceServer* server);

}  // namespace berth
