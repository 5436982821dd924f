// SPDX-License-Identifier: Apache-2.0
// vhdkit compact [--mode M] [--output NEW] [--dry-run] [--json] [--log FILE] [--service[=SOCKET]] PATH...
// What the reference's sample clients do, for each path in turn: call CompactVirtualHardDisk, poll the job
// printing "In progress... N% completed." (a progress bar on a terminal), print ErrorCode and
// ErrorDescription when it fails; then a summary with each image's size before and after.
#include <signal.h>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "cli/batch.h"
#include "cli/commands.h"
#include "cli/console.h"
#include "cli/job_client.h"
#include "cli/json_output.h"
#include "cli/reclaim_lines.h"
#include "cli/report.h"
#include "cli/sizes.h"
#include "compact/compact.h"
#include "compact/unsparse.h"
#include "io/file.h"
#include "service/job_json.h"

namespace vhdkit::cli {
namespace {

// The service wants absolute paths; the user's spelling is kept (no symlink resolved), and a current
// folder that cannot be read leaves the path as given (the service then says it is not absolute).
std::string absolute_path(const std::string& given) {
  std::error_code ec;
  auto p = std::filesystem::absolute(given, ec);
  return ec ? given : p.lexically_normal().string();
}

using namespace std::chrono_literals;

// Set by the SIGINT handler; a lock-free atomic store is async-signal-safe. The polling loop turns it into
// RequestStateChange(Terminate), so the job stops at its next safe point and leaves a valid image.
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_sigint(int) { g_interrupted.store(true); }

void catch_interrupts() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;  // a second Ctrl-C kills at once (the write order keeps the image valid)
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

struct CompactArgs {
  std::vector<std::string> paths;
  std::string mode = "full";
  std::optional<std::string> output;
  bool dry_run = false;
  bool is_parent = false;
  bool json = false;
  bool unsparse = false;
  std::optional<std::string> log;
  std::string service_socket;
  CLI::Option* service_flag = nullptr;
  bool use_service() const { return service_flag && service_flag->count() > 0; }
  BatchArgs batch;  // --recursive, --jobs, --report, ...: the run is a batch (cmd_batch.cpp)
};

// What happened to one image, for the summary and --json.
struct Outcome {
  std::string path;
  ReturnCode return_value = ReturnCode::Failed;
  std::string message;
  std::optional<service::JobStatus> job;
  bool succeeded() const { return job && job->state == service::JobState::Completed; }
  int exit_status() const {
    if (succeeded()) return 0;
    if (!job) return cli::exit_status(return_value);
    if (job->state == service::JobState::Terminated) return 130;
    return job->error_code ? cli::exit_status(static_cast<ReturnCode>(job->error_code)) : 1;
  }
};

std::string bar(const std::string& path, uint16_t percent) {
  constexpr int kWidth = 30;
  int filled = percent * kWidth / 100;
  return fmt::format("{} [{}{}] {:3}%", std::filesystem::path(path).filename().string(), std::string(filled, '#'),
                     std::string(kWidth - filled, '.'), percent);
}

// Polls the job until it ends, showing progress; turns Ctrl-C into a terminate request.
Result<service::JobStatus> follow(JobClient& client, const std::string& id, const std::string& path, Console& console,
                                  bool quiet) {
  auto last_line = std::chrono::steady_clock::now() - 1h;
  bool terminate_sent = false;
  for (;;) {
    VHDKIT_ASSIGN(service::JobStatus s, client.status(id));
    if (service::is_finished(s.state)) return s;
    if (g_interrupted.load() && !terminate_sent) {
      terminate_sent = true;
      client.request_state_change(id, service::RequestedState::Terminate);
      if (!quiet) console.line("Interrupted: stopping at the next safe point (the image stays valid)...");
    }
    auto now = std::chrono::steady_clock::now();
    std::string progress = fmt::format("In progress... {}% completed.", s.percent_complete);
    if (now - last_line >= 1s) {
      last_line = now;
      if (quiet) {
      } else if (console.is_terminal()) {
        console.log_only(progress);
      } else {
        console.line(progress);
      }
    }
    if (!quiet && console.is_terminal()) console.redraw(bar(path, s.percent_complete));
    std::this_thread::sleep_for(100ms);
  }
}

void print_result(const Outcome& o, Console& console) {
  if (!o.job) {
    // The C# sample's wording, with the reference's name for the value and our reason.
    console.line(fmt::format("Compact {} returned error {} ({}): {}", o.path, static_cast<uint32_t>(o.return_value),
                             describe(o.return_value), o.message));
    return;
  }
  const auto& s = *o.job;
  if (o.succeeded() && s.report && s.report->dry_run) {
    console.line(fmt::format("{}: compaction would release {} ({} -> {}); dry run, nothing written", o.path,
                             human_size(s.report->bytes_released), human_size(s.report->file_size_before),
                             human_size(s.report->file_size_after)));
  } else if (o.succeeded()) {
    std::string sizes;
    if (s.report) {
      sizes = fmt::format(": {} -> {} ({} released)", human_size(s.report->file_size_before),
                          human_size(s.report->file_size_after), human_size(s.report->bytes_released));
    }
    console.line(fmt::format("{} was compacted successfully{}", o.path, sizes));
  } else {
    console.line(fmt::format("Unable to compact {}", o.path));
    console.line(fmt::format("ErrorCode:{}", s.error_code));
    console.line(fmt::format("ErrorDescription:{}", s.error_description));
  }
  if (s.report && !s.report->mode_note.empty()) console.line(fmt::format("Note: {}", s.report->mode_note));
  if (s.report && o.succeeded())
    for (const std::string& line : reclaim_lines(*s.report)) console.line(line);
}

std::string summary_line(const Outcome& o) {
  if (!o.job)
    return fmt::format("  {}: not started, {} ({})", o.path, static_cast<uint32_t>(o.return_value),
                       describe(o.return_value));
  const auto& s = *o.job;
  std::string sizes =
      s.report ? fmt::format("{} -> {}", human_size(s.report->file_size_before), human_size(s.report->file_size_after))
               : "size unchanged";
  std::string what = std::string(service::to_string(s.state));
  if (s.state == service::JobState::Exception) what += fmt::format(", ErrorCode {}", s.error_code);
  if (s.report && s.report->dry_run) what += ", dry run";
  return fmt::format("  {}: {} ({})", o.path, sizes, what);
}

Json json_outcome(const Outcome& o) {
  Json j;
  j["Path"] = o.path;
  j["ReturnValue"] = static_cast<uint32_t>(o.return_value);
  if (!o.message.empty()) j["Message"] = o.message;
  j["Job"] = o.job ? Json(service::to_json(*o.job)) : Json(nullptr);
  j["Succeeded"] = o.succeeded();
  return j;
}

// --unsparse: Retrim's way back (compact/unsparse.h), in this process, one image after another.
int run_unsparse(const CompactArgs& args, Console& console) {
  int status = 0;
  for (const auto& given : args.paths) {
    auto r = compact::unsparse_image(io::Env::posix(), absolute_path(given));
    if (!r) {
      console.line(message(r.error()));
      if (status == 0) status = exit_status(r.error().code());
      continue;
    }
    console.line(fmt::format("{}: filled {} hole{} ({}); the host stores {} -> {} of {}", r->path, r->holes,
                             r->holes == 1 ? "" : "s", human_size(r->hole_bytes), human_size(r->allocated_bytes_before),
                             human_size(r->allocated_bytes_after), human_size(r->file_size)));
  }
  return status;
}

int run_compact(const CompactArgs& args) {
  if (args.batch.active()) {
    auto mode = compact::mode_from_string(args.mode);
    return run_batch(args.batch,
                     {args.paths, *mode, args.dry_run ? compact::Action::DryRun : compact::Action::Compact, args.log,
                      args.use_service() ? std::optional(args.service_socket) : std::nullopt, args.json});
  }
  auto console = Console::open(args.log);
  if (!console) {
    fmt::print(stderr, "{}\n", message(console.error()));
    return exit_status(console.error().code());
  }
  if (args.unsparse) return run_unsparse(args, *console);
  if (args.output && args.paths.size() != 1) {
    fmt::print(stderr, "vhdkit: --output takes one image, and {} were given\n", args.paths.size());
    return exit_status(ReturnCode::InvalidParameter);
  }
  auto mode = compact::mode_from_string(args.mode);
  std::unique_ptr<JobClient> client = args.use_service() ? service_job_client(args.service_socket) : local_job_client();
  catch_interrupts();

  std::vector<Outcome> outcomes;
  for (const auto& given : args.paths) {
    if (g_interrupted.load()) break;
    service::CompactRequest request;
    request.path = absolute_path(given);
    request.mode = *mode;
    request.action = args.dry_run ? compact::Action::DryRun : compact::Action::Compact;
    if (args.output) request.output_path = absolute_path(*args.output);
    if (args.is_parent) request.parent_of_children = compact::ParentOfChildren::Declared;

    Outcome o;
    o.path = request.path;
    auto started = client->compact(request);
    o.return_value = started.return_value;
    o.message = started.message;
    if (started.return_value == ReturnCode::JobStarted) {
      auto s = follow(*client, started.job, request.path, *console, args.json);
      if (s) {
        o.job = *s;
      } else {
        o.return_value = s.error().code();
        o.message = s.error().what();
      }
    }
    if (!args.json) print_result(o, *console);
    outcomes.push_back(std::move(o));
  }

  bool all = outcomes.size() == args.paths.size() &&
             std::all_of(outcomes.begin(), outcomes.end(), [](const Outcome& o) { return o.succeeded(); });
  if (args.json) {
    Json report;
    Json images = Json::array();
    for (const auto& o : outcomes) images.push_back(json_outcome(o));
    report["Images"] = images;
    report["Succeeded"] = all;
    std::string text = json_text(report);
    fmt::print("{}\n", text);
    console->log_only(text);
  } else {
    console->line("Summary:");
    for (const auto& o : outcomes) console->line(summary_line(o));
    for (size_t i = outcomes.size(); i < args.paths.size(); ++i)
      console->line(fmt::format("  {}: not started (interrupted)", args.paths[i]));
  }
  if (all) return 0;
  for (const auto& o : outcomes)
    if (!o.succeeded()) return o.exit_status();
  return 130;  // interrupted before some images were reached
}

}  // namespace

Command register_compact(CLI::App& app) {
  auto args = std::make_shared<CompactArgs>();
  auto* sub = app.add_subcommand("compact", "Compact VHD/VHDX images in place (CompactVirtualHardDisk)");
  sub->add_option("--mode", args->mode, "full, quick, prezeroed, retrim or pretrimmed (default full)")
      ->check([](const std::string& m) {
        return compact::mode_from_string(m) ? std::string() : "not a mode: full, quick, prezeroed, retrim, pretrimmed";
      });
  sub->add_option("--output", args->output, "Write the compacted image here and leave PATH unchanged");
  sub->add_flag("--dry-run", args->dry_run, "Say what compaction would release, write nothing");
  sub->add_flag("--is-parent", args->is_parent,
                "PATH is the parent of differencing disks kept elsewhere: refuse Full and Quick (children beside "
                "it are found without this)");
  sub->add_flag("--json", args->json, "Print the final report as JSON");
  sub->add_flag("--unsparse", args->unsparse,
                "Fill the holes of PATH back (after --mode retrim), so that Windows accepts it; changes no content")
      ->excludes(sub->get_option("--output"))
      ->excludes(sub->get_option("--dry-run"));
  sub->add_option("--log", args->log, "Append every printed line to this file");
  // A flag that takes its value only as --service=SOCKET, so that `--service disk.vhd` keeps the path.
  args->service_flag =
      sub->add_flag("--service{" + std::string(kDefaultSocket) + "}", args->service_socket,
                    "Ask vhdkitd to do it (--service=SOCKET; default " + std::string(kDefaultSocket) + ")");
  sub->add_option("PATH", args->paths, "Images, compacted one after another (folders with --recursive)")->required();
  add_batch_options(*sub, args->batch);
  return {sub, [args] { return run_compact(*args); }};
}

}  // namespace vhdkit::cli
