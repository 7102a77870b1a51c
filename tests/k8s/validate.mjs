// Validates a stream of YAML documents (stdin) against the Kubernetes
// OpenAPI schemas of npm `kubernetes-models`: each document by its
// apiVersion and kind. Prints one JSON line per document
// ({"kind", "name", "ok", "error"}) and exits 1 if any is invalid or of a
// kind this script does not know.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { Job } from "kubernetes-models/batch/v1/Job";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { Service } from "kubernetes-models/v1/Service";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Pod } from "kubernetes-models/v1/Pod";

const kinds = {
  "apps/v1/Deployment": Deployment,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "batch/v1/Job": Job,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "v1/Service": Service,
  "v1/ConfigMap": ConfigMap,
  "v1/Pod": Pod,
};

let failed = false;
for (const doc of yaml.loadAll(readFileSync(0, "utf8"))) {
  if (doc === null || doc === undefined) continue;
  const key = `${doc.apiVersion}/${doc.kind}`;
  const Model = kinds[key];
  const line = { kind: key, name: doc.metadata?.name ?? null, ok: true, error: null };
  if (!Model) {
    line.ok = false;
    line.error = `no schema for ${key}`;
  } else {
    try {
      new Model(doc).validate();
    } catch (e) {
      line.ok = false;
      line.error = String(e.message ?? e).slice(0, 2000);
    }
  }
  failed ||= !line.ok;
  console.log(JSON.stringify(line));
}
process.exit(failed ? 1 : 0);
