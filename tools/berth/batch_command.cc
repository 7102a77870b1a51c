#include "batch_command.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "berth/batch.h"

namespace berth {

namespace {

// --progress json: one JSON object a line on stderr.
void PrintJsonProgress(const BatchProgress& p) {
  std::fprintf(stderr,
               "{\"event\":\"progress\",\"rows_read\":%lld,\"rows_written\":%lld,\"rows_rejected\":%lld,"
               "\"bytes_read\":%llu,\"bytes_total\":%llu,\"elapsed_s\":%.3f,\"eta_s\":%.1f}\n",
               static_cast<long long>(p.rows_read), static_cast<long long>(p.rows_written),
               static_cast<long long>(p.rows_rejected), static_cast<unsigned long long>(p.bytes_done),
               static_cast<unsigned long long>(p.bytes_total), p.elapsed_s, p.eta_s);
  std::fflush(stderr);
}

// --progress bar: one line redrawn in place.
void DrawProgressBar(const BatchProgress& p) {
  double pct = p.bytes_total ? 100.0 * static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total) : 100.0;
  std::fprintf(stderr, "\r\033[Kberth batch: %lld rows  %.1f MB/s  %.0f%%  ETA %.0f s",
               static_cast<long long>(p.rows_read), p.bytes_per_s / 1e6, pct, p.eta_s);
  std::fflush(stderr);
}

// "I/N" -> (I, N) with 0 <= I < N <= 1,000,000.
bool ParseShard(const std::string& text, int64_t* index, int64_t* count) {
  size_t slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == text.size()) return false;
  auto digits = [](const std::string& s, int64_t* v) {
    if (s.empty() || s.size() > 7 || s.find_first_not_of("0123456789") != std::string::npos) return false;
    *v = std::stoll(s);
    return true;
  };
  return digits(text.substr(0, slash), index) && digits(text.substr(slash + 1), count) && *count >= 1 &&
         *count <= 1'000'000 && *index < *count;
}

}  // namespace

Subcommand AddBatchCommand(CLI::App& parent) {
  auto o = std::make_shared<BatchOptions>();
  auto progress = std::make_shared<std::string>("auto");
  auto shard = std::make_shared<std::string>();
  auto* app = parent.add_subcommand("batch", "Run a model over a CSV or JSON Lines file, streaming, losing no row");
  auto m = std::make_shared<MergeOptions>();
  auto* merge = app->add_subcommand("merge", "Join the parts of a sharded run (--shard I/N) into one output");
  merge->add_option("--out", m->out, "The run's --out; the parts are OUT.part-0 ... OUT.part-{N-1}")->required();
  merge->add_option("--shards", m->shards, "N, the number of shards of the run")
      ->required()
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}));
  merge->add_option("--rejects", m->rejects, "The run's --rejects (default: OUT.rejects.csv)");
  merge->add_option("--format", m->out_format, "csv or jsonl (default: from --out's extension)")
      ->check(CLI::IsMember({"csv", "jsonl"}));
  // Required unless `merge` runs: checked below, so that `berth batch merge` needs no model.
  app->add_option("model_dir", o->model_dir, "Model directory (holding model.yaml and version directories)");
  app->add_option("--in", o->in, "Input file (.csv, or .jsonl/.ndjson for JSON Lines)");
  app->add_option("--out", o->out, "Output file; written as OUT.partial and renamed when the run ends");
  app->add_option("--shard", *shard,
                  "I/N: only the I-th of N parts of the input (0-based; records are never split), written as "
                  "OUT.part-I; join the parts with `berth batch merge`");
  app->add_option("--rejects", o->rejects, "Rejected records with line and reason (default: OUT.rejects.csv)");
  app->add_option("--keep", o->keep, "Input columns copied verbatim in front of the outputs (comma-separated)")
      ->delimiter(',');
  app->add_flag("--resume", o->resume, "Continue a killed run from OUT.checkpoint");
  app->add_option("--format", o->out_format, "Output format: csv or jsonl (default: from --out's extension)")
      ->check(CLI::IsMember({"csv", "jsonl"}));
  app->add_option("--in-format", o->in_format, "Input format: csv or jsonl (default: from --in's extension)")
      ->check(CLI::IsMember({"csv", "jsonl"}));
  app->add_option("--max-rejects", o->max_rejects, "More rejected records than this fail the run (exit 1)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, INT64_MAX));
  app->add_option("--batch-size", o->batch_size, "Rows per model execution (default: the model's max_batch_size)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app->add_option("--version", o->version, "Model version (default: the highest)");
  app->add_option("--backend-dir", o->backend_dir, "Directory of backend plugins");
  app->add_option("--progress", *progress, "auto (a bar on a terminal), bar, json (lines on stderr) or none")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "bar", "json", "none"}));
  app->add_option("--checkpoint-rows", o->checkpoint_rows, "Checkpoint at least every N rows")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, INT64_MAX));
  app->add_option("--checkpoint-secs", o->checkpoint_secs, "Checkpoint at least every S seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  app->add_option("--max-record-bytes", o->max_record_bytes, "Longest record accepted (a longer one stops the run)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1024}, size_t{1} << 34));
  app->add_option("--block-bytes", o->block_bytes, "Read size")
      ->capture_default_str()
      ->check(CLI::Range(size_t{4096}, size_t{1} << 30));
  return {app, [o, progress, shard, m, merge]() {
            if (merge->parsed()) {
              auto merged = MergeShards(*m);
              if (!merged.ok()) {
                std::cerr << "berth batch merge: " << merged.status().message() << "\n";
                return 1;
              }
              std::cerr << merged->text << "\n";
              return 0;
            }
            for (const auto& [value, flag] : {std::pair<const std::string*, const char*>{&o->model_dir, "model_dir"},
                                              {&o->in, "--in"},
                                              {&o->out, "--out"}}) {
              if (value->empty()) {
                std::cerr << "berth batch: " << flag << " is required\n";
                return 2;
              }
            }
            if (!shard->empty() && !ParseShard(*shard, &o->shard_index, &o->shard_count)) {
              std::cerr << "berth batch: --shard: expected I/N with 0 <= I < N (e.g. 0/4 ... 3/4), got '"
                        << shard->substr(0, 32) << "'\n";
              return 2;
            }
            bool bar = *progress == "bar" || (*progress == "auto" && ::isatty(STDERR_FILENO));
            if (*progress == "json") {
              o->on_progress = PrintJsonProgress;
            } else if (bar) {
              o->on_progress = DrawProgressBar;
              o->progress_period_s = 0.25;
            }
            auto summary = RunBatch(*o);
            if (bar) std::fprintf(stderr, "\r\033[K");
            if (!summary.ok()) {
              std::cerr << "berth batch: " << summary.status().message() << "\n";
              return 1;
            }
            if (*progress == "json") std::cerr << summary->json << "\n";
            std::cerr << summary->text << "\n";
            if (!summary->ok()) {
              std::cerr << "berth batch: FAILED: " << summary->rows_rejected
                        << " rejected records, more than --max-rejects " << o->max_rejects << " (see "
                        << summary->rejects_path << ")\n";
              return 1;
            }
            return 0;
          }};
}

}  // namespace berth
