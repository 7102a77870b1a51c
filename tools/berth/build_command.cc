#include "build_command.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "berth/version.h"
#include "image/dockerfile.h"
#include "image/image_builder.h"
#include "image/registry_client.h"
#include "image/sbom.h"

namespace berth {
namespace {

struct BuildFlags {
  ImageBuildOptions options;
  std::string output;
  std::string format = "oci";
  std::string sbom;
  bool push = false;
  bool insecure = false;
};

Status RunBuild(BuildFlags flags) {
  ImageBuildOptions& o = flags.options;
  if (flags.output.empty() && !flags.push) return InvalidArgument("give -o FILE, --push, or both");
  ASSIGN_OR_RETURN(o.source_date_epoch, SourceDateEpochFromEnv());
  o.progress = ::isatty(STDERR_FILENO) != 0;
  spdlog::set_level(spdlog::level::warn);  // resolving the models loads plugins: their info lines are noise here
  ImageReference ref;
  std::string credentials;
  if (flags.push) {
    ASSIGN_OR_RETURN(ref, ParseImageReference(o.reference));
    ASSIGN_OR_RETURN(credentials, RegistryCredentials(ref));
  } else {
    RETURN_IF_ERROR(ParseImageReference(o.reference).status());
  }
  std::string work_parent;
  if (!flags.output.empty()) {
    RETURN_IF_ERROR(CheckWritable(flags.output));
    work_parent = std::filesystem::absolute(flags.output).parent_path().string();
  } else {
    const char* t = std::getenv("TMPDIR");
    work_parent = t && *t ? t : "/tmp";
  }
  std::string sbom = flags.sbom.empty() && !flags.output.empty() ? flags.output + ".spdx.json" : flags.sbom;
  if (!sbom.empty()) RETURN_IF_ERROR(CheckWritable(sbom));

  auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(TempDir work, TempDir::Create(work_parent, ".berth-build-"));
  o.work_dir = work.path();
  ASSIGN_OR_RETURN(Image image, BuildImage(o));
  if (!flags.output.empty()) {
    RETURN_IF_ERROR(flags.format == "docker" ? WriteDockerArchive(image, flags.output)
                                             : WriteOciArchive(image, flags.output));
  }
  if (!sbom.empty()) {
    std::string json = SpdxJson(image, DpkgIndex::Load(), Version());
    RETURN_IF_ERROR(WriteSinkAtomically(sbom, [&](ByteSink* sink) -> Status {
      if (!sink->Write(json.data(), json.size())) return FailedPrecondition(sink->error());
      return sink->Finish();
    }));
  }
  uint64_t compressed = 0, uncompressed = 0;
  for (const auto& l : image.layers) compressed += l.size, uncompressed += l.uncompressed_size;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (flags.push) {
    PushOptions po;
    po.insecure = flags.insecure;
    po.progress = o.progress;
    po.credentials = credentials;
    ASSIGN_OR_RETURN(PushResult pushed, PushImage(image, ref, po));
    std::cerr << "pushed " << o.reference << "@" << pushed.manifest_digest << " (" << pushed.blobs_uploaded
              << " blobs uploaded, " << pushed.blobs_skipped << " already there)\n";
  }
  // stdout: the manifest digest, for scripts; stderr: the summary.
  std::fprintf(stderr, "%s: %zu layers, %.1f MB compressed, %.1f MB uncompressed, built in %.1f s\n",
               o.reference.c_str(), image.layers.size(), compressed / 1e6, uncompressed / 1e6, secs);
  if (!flags.output.empty()) std::fprintf(stderr, "wrote %s (%s)\n", flags.output.c_str(), flags.format.c_str());
  if (!sbom.empty()) std::fprintf(stderr, "wrote %s (SPDX 2.3)\n", sbom.c_str());
  std::printf("%s\n", image.manifest_digest.c_str());
  return Status::Ok();
}

}  // namespace

Subcommand AddBuildCommand(CLI::App& parent) {
  auto flags = std::make_shared<BuildFlags>();
  auto* app = parent.add_subcommand(
      "build", "Build a reproducible OCI image of a model repository without a daemon; write it or push it");
  app->add_option("--model-repository", flags->options.model_repository, "Model repository directory")->required();
  app->add_option("-t,--tag", flags->options.reference, "Image name, [registry/]name:tag")->required();
  app->add_option("-o,--output", flags->output, "Write the image to this archive file");
  app->add_option("--format", flags->format, "Archive format: oci (OCI image layout) or docker (docker-archive)")
      ->capture_default_str()
      ->check(CLI::IsMember({"oci", "docker"}));
  app->add_flag("--push", flags->push, "Push the image to the registry named in -t (OCI distribution API)");
  app->add_flag("--insecure-registry", flags->insecure,
                "Registry over plain HTTP, or HTTPS without certificate verification");
  app->add_option("--sbom", flags->sbom, "SPDX JSON SBOM file (default: OUTPUT.spdx.json beside -o)");
  app->add_option("--revision", flags->options.revision, "Source revision (org.opencontainers.image.revision)");
  app->add_option("--backend-dir", flags->options.backend_dir,
                  "Directory of backend plugins (default: ../lib/berth/backends next to the binary)");
  app->add_flag("!--no-strip", flags->options.strip, "Keep the debug info of berth and its plugins");
  app->add_option("--gzip-level", flags->options.gzip_level, "gzip level of the layers, 1 (fast) to 9 (small)")
      ->capture_default_str()
      ->check(CLI::Range(1, 9));
  return {app, [flags] {
            Status s = RunBuild(*flags);
            if (!s.ok()) {
              std::cerr << "berth build: " << s.message() << "\n";
              return 1;
            }
            return 0;
          }};
}

Subcommand AddDockerfileCommand(CLI::App& parent) {
  auto flags = std::make_shared<BuildFlags>();
  auto* app = parent.add_subcommand(
      "dockerfile", "Write a docker build context (FROM scratch Dockerfile) with the same contents as berth build");
  app->add_option("--model-repository", flags->options.model_repository, "Model repository directory")->required();
  app->add_option("-o,--output", flags->output, "Build context directory to create (must not exist, or be empty)")
      ->required();
  flags->options.reference = "berth-model:latest";
  app->add_option("-t,--tag", flags->options.reference, "Image name for the labels, name:tag")->capture_default_str();
  app->add_option("--revision", flags->options.revision, "Source revision (org.opencontainers.image.revision)");
  app->add_option("--backend-dir", flags->options.backend_dir,
                  "Directory of backend plugins (default: ../lib/berth/backends next to the binary)");
  return {app, [flags] {
            Status s = [&]() -> Status {
              ImageBuildOptions o = flags->options;
              ASSIGN_OR_RETURN(o.source_date_epoch, SourceDateEpochFromEnv());
              o.progress = ::isatty(STDERR_FILENO) != 0;
              spdlog::set_level(spdlog::level::warn);
              RETURN_IF_ERROR(WriteDockerfileContext(o, flags->output));
              std::cerr << "wrote " << flags->output << "/Dockerfile; build it with: docker build -t " << o.reference
                        << " " << flags->output << "\n";
              return Status::Ok();
            }();
            if (!s.ok()) {
              std::cerr << "berth dockerfile: " << s.message() << "\n";
              return 1;
            }
            return 0;
          }};
}

}  // namespace berth
