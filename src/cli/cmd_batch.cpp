// SPDX-License-Identifier: Apache-2.0
// The batch run behind `vhdkit compact --recursive/--jobs/--report/...`: find the images, then let N workers
// take them one at a time (never a child while its parent is being written, or the reverse), each through its
// own JobClient (in this process or vhdkitd), and record one ImageResult per image. Nothing an image does
// stops the run; only Ctrl-C does, and then every running job stops at its next safe point.
#include <signal.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "cli/batch.h"
#include "cli/batch_report.h"
#include "cli/batch_scan.h"
#include "cli/console.h"
#include "cli/job_client.h"
#include "cli/json_output.h"
#include "cli/map_svg.h"
#include "cli/report.h"
#include "cli/sizes.h"

namespace vhdkit::cli {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

std::atomic<bool> g_batch_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free);
extern "C" void on_batch_signal(int) { g_batch_interrupted.store(true); }

void catch_batch_interrupts() {
  struct sigaction sa {};
  sa.sa_handler = on_batch_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;  // a second Ctrl-C kills at once; the write order keeps every image valid
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

// The settings of a run, parsed once.
struct Plan {
  BatchContext context;
  unsigned jobs = 1;
  uint64_t min_size = 0;
  double min_gain = 0;
  std::optional<std::chrono::milliseconds> max_time;
  std::optional<SteadyClock::time_point> deadline;
  std::optional<std::string> svg_before, svg_after;
};

std::optional<uint64_t> file_size(io::Env& env, const std::string& path) {
  auto f = env.open(path, io::Access::ReadOnly, io::Creation::OpenExisting);
  if (!f) return std::nullopt;
  auto s = (*f)->size();
  return s ? std::optional<uint64_t>(*s) : std::nullopt;
}

// Shared between the workers and the thread that draws progress.
struct Progress {
  std::atomic<uint64_t> bytes_total{0};
  std::atomic<uint64_t> bytes_done{0};  // of finished images
  std::atomic<size_t> images_done{0};
  std::mutex mu;
  std::map<std::string, uint64_t> running;  // path -> bytes of it done so far (percent of its size)
  std::vector<std::string> lines;           // results to print, in the order they came
  uint64_t bytes_now() {
    std::lock_guard lock(mu);
    uint64_t n = bytes_done.load();
    for (auto& [path, done] : running) n += done;
    return n;
  }
};

class Runner {
 public:
  Runner(const Plan& plan, std::vector<BatchImage> images, Progress& progress)
      : plan_(plan),
        images_(std::move(images)),
        progress_(progress),
        results_(images_.size()),
        state_(images_.size(), State::Waiting) {}

  void run() {
    std::vector<std::thread> workers;
    for (unsigned n = 0; n < plan_.jobs; ++n) workers.emplace_back([this] { work(); });
    for (auto& w : workers) w.join();
  }

  std::vector<ImageResult> take() { return std::move(results_); }

 private:
  enum class State { Waiting, Running, Done };

  std::unique_ptr<JobClient> client() const {
    return plan_.context.service_socket ? service_job_client(*plan_.context.service_socket) : local_job_client();
  }

  // The next image no running job shares a file with, or nullopt when all are taken.
  std::optional<size_t> next(std::unique_lock<std::mutex>& lock) {
    for (;;) {
      bool waiting = false;
      for (size_t i = 0; i < images_.size(); ++i) {
        if (state_[i] != State::Waiting) continue;
        waiting = true;
        bool clash = false;
        for (size_t r = 0; r < images_.size() && !clash; ++r)
          clash = state_[r] == State::Running && share_a_file(images_[i], images_[r]);
        if (!clash) {
          state_[i] = State::Running;
          return i;
        }
      }
      if (!waiting) return std::nullopt;
      changed_.wait(lock);
    }
  }

  void work() {
    auto c = client();
    std::unique_lock lock(mu_);
    while (auto i = next(lock)) {
      lock.unlock();
      ImageResult r = process(images_[*i], *c);
      {
        std::lock_guard p(progress_.mu);
        progress_.running.erase(images_[*i].path);
        progress_.lines.push_back(fmt::format("{}: {}{}", r.path, to_string(r.outcome),
                                              r.reason.empty() ? "" : fmt::format(" ({})", r.reason)));
      }
      progress_.bytes_done += images_[*i].size;
      ++progress_.images_done;
      lock.lock();
      results_[*i] = std::move(r);
      state_[*i] = State::Done;
      changed_.notify_all();
    }
  }

  struct Followed {
    service::JobStatus status;
    bool budget_spent = false;
  };

  Result<Followed> follow(JobClient& client, const std::string& job, const BatchImage& image) {
    auto started = SteadyClock::now();
    Followed f;
    bool terminate_sent = false;
    for (;;) {
      VHDKIT_ASSIGN(f.status, client.status(job));
      if (service::is_finished(f.status.state)) return f;
      {
        std::lock_guard p(progress_.mu);
        progress_.running[image.path] = image.size / 100 * f.status.percent_complete;
      }
      bool over_budget = plan_.max_time && SteadyClock::now() - started >= *plan_.max_time;
      if (!terminate_sent && (over_budget || g_batch_interrupted.load())) {
        terminate_sent = true;
        f.budget_spent = over_budget;
        client.request_state_change(job, service::RequestedState::Terminate);
      }
      std::this_thread::sleep_for(50ms);
    }
  }

  // One call of CompactVirtualHardDisk and its job, to the end.
  struct Call {
    ReturnCode return_value = ReturnCode::Failed;
    std::string message;
    std::optional<Followed> job;
  };
  Call call(JobClient& client, const BatchImage& image, compact::Action action) {
    service::CompactRequest request;
    request.path = image.path;
    request.mode = plan_.context.mode;
    request.action = action;
    Call out;
    auto started = client.compact(request);
    out.return_value = started.return_value;
    out.message = started.message;
    if (started.return_value != ReturnCode::JobStarted) return out;
    auto followed = follow(client, started.job, image);
    if (!followed) {
      out.return_value = followed.error().code();
      out.message = followed.error().what();
    } else {
      out.job = std::move(*followed);
    }
    return out;
  }

  // "In use" can be passing: the dry run's own job closing the image as it ends, or a sibling in the same
  // folder being written while the parent rule reads it. Asked again a few times (1.5 s in all) before the
  // image is reported in use; a program that really holds it (a running VM) still holds it then.
  Call call_retrying_in_use(JobClient& client, const BatchImage& image, compact::Action action) {
    Call c = call(client, image, action);
    for (auto wait = 100ms; !c.job && c.return_value == ReturnCode::InUse && wait <= 800ms; wait *= 2) {
      if (g_batch_interrupted.load()) break;
      std::this_thread::sleep_for(wait);
      c = call(client, image, action);
    }
    return c;
  }

  // A call that did not complete, as the report's outcome.
  static void record_failure(const Call& c, ImageResult& r) {
    if (c.job) {
      r.return_code = c.job->status.error_code;
      r.reason = c.job->status.error_description;
    } else {
      r.return_code = static_cast<uint32_t>(c.return_value);
      r.reason = c.message;
    }
    auto code = static_cast<ReturnCode>(r.return_code);
    if (code == ReturnCode::InUse) {
      r.outcome = ImageOutcome::InUse;
    } else if (!c.job && (code == ReturnCode::NotSupported || code == ReturnCode::InvalidState)) {
      // Refused before any job, for what the image is (fixed, a parent of differencing disks, ...), not
      // for damage: the batch passes over it, keeping the reason and the code.
      r.outcome = ImageOutcome::Skipped;
    } else {
      r.outcome = ImageOutcome::Failed;
    }
  }

  static bool completed(const Call& c) { return c.job && c.job->status.state == service::JobState::Completed; }

  ImageResult process(const BatchImage& image, JobClient& client) {
    auto started = SteadyClock::now();
    ImageResult r = judge(image, client);
    r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started);
    return r;
  }

  ImageResult judge(const BatchImage& image, JobClient& client) {
    io::Env& env = io::Env::posix();
    ImageResult r;
    r.path = image.path;
    r.format = image.format;
    r.mode = std::string(compact::to_string(plan_.context.mode));
    r.size_before = file_size(env, image.path).value_or(image.size);
    r.size_after = r.size_before;
    if (g_batch_interrupted.load()) {
      r.outcome = ImageOutcome::Skipped;
      r.reason = "not started: the run was interrupted";
      return r;
    }
    if (plan_.deadline && SteadyClock::now() >= *plan_.deadline) {
      r.outcome = ImageOutcome::Skipped;
      r.reason = "not started: the run's --deadline had passed";
      return r;
    }
    if (r.size_before < plan_.min_size) {
      r.outcome = ImageOutcome::Skipped;
      r.reason = fmt::format("below --min-size: {} < {}", human_size(r.size_before), human_size(plan_.min_size));
      return r;
    }
    bool dry_only = plan_.context.action == compact::Action::DryRun;
    if (dry_only || plan_.min_gain > 0) {
      Call dry = call_retrying_in_use(client, image, compact::Action::DryRun);
      if (!completed(dry)) {
        record_failure(dry, r);
        return r;
      }
      const auto& report = dry.job->status.report;
      uint64_t gain = report ? report->bytes_released : 0;
      double percent = r.size_before ? 100.0 * static_cast<double>(gain) / static_cast<double>(r.size_before) : 0.0;
      if (dry_only) {
        r.outcome = gain ? ImageOutcome::WouldCompact : ImageOutcome::Unchanged;
        r.bytes_released = gain;
        r.size_after = r.size_before - std::min(gain, r.size_before);
        r.reason = gain ? fmt::format("dry run: would release {:.1f}%", percent)
                        : fmt::format("nothing to gain{}",
                                      report && !report->gain_note.empty() ? ": " + report->gain_note : "");
        return r;
      }
      if (gain == 0) {
        r.outcome = ImageOutcome::Skipped;
        r.reason =
            fmt::format("nothing to gain{}", report && !report->gain_note.empty() ? ": " + report->gain_note : "");
        return r;
      }
      if (percent < plan_.min_gain) {
        r.outcome = ImageOutcome::Skipped;
        r.reason = fmt::format("below --min-gain: the dry run would release {:.1f}% ({}), < {}%", percent,
                               human_size(gain), plan_.min_gain);
        return r;
      }
    }
    if (plan_.svg_before) {
      if (auto s = write_map_svg(env, image.path, *plan_.svg_before); !s)
        r.reason = "--svg-before: " + s.error().what();
    }
    Call run = call_retrying_in_use(client, image, compact::Action::Compact);
    r.size_after = file_size(env, image.path).value_or(r.size_before);
    r.bytes_released = r.size_before - std::min(r.size_after, r.size_before);
    if (run.job && run.job->status.state == service::JobState::Terminated) {
      r.outcome = ImageOutcome::Stopped;
      r.reason = run.job->budget_spent ? "--max-time reached: stopped at a safe point; run again to finish"
                                       : "interrupted: stopped at a safe point; run again to finish";
    } else if (!completed(run)) {
      record_failure(run, r);
    } else if (r.bytes_released > 0) {
      r.outcome = ImageOutcome::Compacted;
    } else {
      const auto& report = run.job->status.report;
      r.outcome = ImageOutcome::Unchanged;
      r.reason = fmt::format("nothing to gain{}", report && !report->gain_note.empty() ? ": " + report->gain_note : "");
    }
    if (plan_.svg_after) {
      if (auto s = write_map_svg(env, image.path, *plan_.svg_after); !s)
        r.reason += "; --svg-after: " + s.error().what();
    }
    return r;
  }

  const Plan& plan_;
  std::vector<BatchImage> images_;
  Progress& progress_;
  std::vector<ImageResult> results_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<State> state_;
};

std::string overall_bar(size_t images_done, size_t images, uint64_t done, uint64_t total) {
  constexpr int kWidth = 30;
  int filled = total ? static_cast<int>(std::min<uint64_t>(done, total) * kWidth / total) : 0;
  return fmt::format("[{}{}] {}/{} images, {} of {}", std::string(filled, '#'), std::string(kWidth - filled, '.'),
                     images_done, images, human_size(done), human_size(total));
}

// Draws progress on the calling thread until the runner is done.
void show_progress(Console& console, Progress& progress, size_t images, const std::atomic<bool>& finished, bool quiet) {
  auto last_line = SteadyClock::now() - 1h;
  int last_percent = -1;
  for (;;) {
    bool end = finished.load();
    std::vector<std::string> lines;
    {
      std::lock_guard lock(progress.mu);
      lines.swap(progress.lines);
    }
    if (!quiet)
      for (const auto& l : lines) console.line(l);
    if (end) return;
    uint64_t total = progress.bytes_total.load();
    uint64_t done = progress.bytes_now();
    int percent = total ? static_cast<int>(std::min<uint64_t>(done, total) * 100 / total) : 0;
    auto now = SteadyClock::now();
    if (!quiet && console.is_terminal()) {
      console.redraw(overall_bar(progress.images_done.load(), images, done, total));
    } else if (!quiet && percent != last_percent && now - last_line >= 1s) {
      // The reference's sample clients print this line while a job runs.
      console.line(fmt::format("In progress... {}% completed.", percent));
      last_percent = percent;
      last_line = now;
    }
    std::this_thread::sleep_for(100ms);
  }
}

Result<Plan> make_plan(const BatchArgs& args, const BatchContext& context) {
  Plan plan;
  plan.context = context;
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  plan.jobs = std::clamp(args.jobs, 1u, cores);
  if (!args.min_size.empty()) {
    auto s = parse_size(args.min_size);
    if (!s) return fail(ReturnCode::InvalidParameter, "", fmt::format("--min-size {}: not a size", args.min_size));
    plan.min_size = *s;
  }
  if (args.min_gain < 0 || args.min_gain > 100)
    return fail(ReturnCode::InvalidParameter, "", "--min-gain is a percentage from 0 to 100");
  plan.min_gain = args.min_gain;
  if (!args.max_time.empty()) {
    plan.max_time = parse_duration(args.max_time);
    if (!plan.max_time)
      return fail(ReturnCode::InvalidParameter, "",
                  fmt::format("--max-time {}: not a duration (90s, 5m, 1h)", args.max_time));
  }
  if (!args.deadline.empty()) {
    auto d = parse_duration(args.deadline);
    if (!d)
      return fail(ReturnCode::InvalidParameter, "",
                  fmt::format("--deadline {}: not a duration (90s, 5m, 1h)", args.deadline));
    plan.deadline = SteadyClock::now() + *d;
  }
  plan.svg_before = args.svg_before;
  plan.svg_after = args.svg_after;
  return plan;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  double scale = 1000;
  char unit = text.back();
  if (unit == 's' || unit == 'm' || unit == 'h') {
    scale = unit == 's' ? 1000 : unit == 'm' ? 60000 : 3600000;
    text.remove_suffix(1);
  }
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !(value >= 0) || value > 1e9) return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(value * scale));
}

bool BatchArgs::active() const {
  return std::any_of(options.begin(), options.end(), [](const CLI::Option* o) { return o->count() > 0; });
}

void add_batch_options(CLI::App& sub, BatchArgs& args) {
  auto* g = sub.add_option_group("Batch", "Many images in one run (any of these makes the run a batch)");
  args.options.push_back(g->add_flag_function(
      "-r,--recursive", [&args](int64_t) { args.recursion = Recursion::On; },
      "PATH may be folders: compact every VHD/VHDX found in them (recognised by content)"));
  args.options.push_back(g->add_flag_function(
      "--follow-symlinks", [&args](int64_t) { args.symlinks = Symlinks::Follow; },
      "Also follow symbolic links that lead out of the folders given"));
  args.options.push_back(g->add_option("-j,--jobs", args.jobs, "Images compacted at once (at most one per core)")
                             ->check(CLI::Range(1u, 1024u)));
  args.options.push_back(g->add_option("--min-size", args.min_size, "Skip images whose file is smaller (e.g. 1G)")
                             ->check(size_validator()));
  args.options.push_back(g->add_option("--min-gain", args.min_gain,
                                       "Skip images the dry run says would shrink by less than PERCENT of their size"));
  args.options.push_back(g->add_option("--max-time", args.max_time,
                                       "Stop each image's job at its next safe point after this long (90s, 5m, 1h); "
                                       "running again finishes it"));
  args.options.push_back(
      g->add_option("--deadline", args.deadline, "Start no image once this long has passed since the run began"));
  args.options.push_back(
      g->add_option("--report", args.report, "Write a report of every image to FILE.json or FILE.csv"));
  args.options.push_back(
      g->add_option("--svg-before", args.svg_before, "Draw the image's map to this SVG before compacting"));
  args.options.push_back(
      g->add_option("--svg-after", args.svg_after, "Draw the image's map to this SVG after compacting"));
}

int run_batch(const BatchArgs& args, const BatchContext& context) {
  auto console = Console::open(context.log);
  if (!console) return report(console.error());
  auto plan = make_plan(args, context);
  if (!plan) {
    fmt::print(stderr, "vhdkit: {}\n", plan.error().what());
    return exit_status(ReturnCode::InvalidParameter);
  }
  if (args.report && !args.report->ends_with(".csv") && !args.report->ends_with(".json")) {
    fmt::print(stderr, "vhdkit: --report {}: name a FILE.json or FILE.csv\n", *args.report);
    return exit_status(ReturnCode::InvalidParameter);
  }
  std::vector<std::string> roots;
  for (const auto& p : context.paths) {
    std::error_code ec;
    auto a = std::filesystem::absolute(p, ec);
    roots.push_back(ec ? p : a.lexically_normal().string());
  }
  BatchScan scan = scan_images(io::Env::posix(), roots, args.recursion, args.symlinks);
  if ((plan->svg_before || plan->svg_after) && scan.images.size() != 1) {
    fmt::print(stderr, "vhdkit: --svg-before and --svg-after draw one image, and {} were found\n", scan.images.size());
    return exit_status(ReturnCode::InvalidParameter);
  }
  for (const auto& e : scan.errors) fmt::print(stderr, "vhdkit: {}\n", e);
  if (!context.json)
    console->line(fmt::format("Found {} image{} in {} path{}; {} at a time", scan.images.size(),
                              scan.images.size() == 1 ? "" : "s", roots.size(), roots.size() == 1 ? "" : "s",
                              plan->jobs));

  catch_batch_interrupts();
  Progress progress;
  for (const auto& i : scan.images) progress.bytes_total += i.size;
  size_t count = scan.images.size();
  Runner runner(*plan, std::move(scan.images), progress);
  std::atomic<bool> finished{false};
  std::thread drawer([&] { show_progress(*console, progress, count, finished, context.json); });
  runner.run();
  finished.store(true);
  drawer.join();

  std::vector<ImageResult> results = runner.take();
  for (const auto& s : scan.skipped) {
    ImageResult r;
    r.path = s.path;
    r.format = "unknown";
    r.mode = std::string(compact::to_string(context.mode));
    r.outcome = ImageOutcome::Skipped;
    r.reason = s.reason;
    results.push_back(std::move(r));
  }
  int status = 0;
  if (args.report) {
    if (auto s = write_report(*args.report, results); !s) status = report(s.error());
  }
  if (context.json) {
    fmt::print("{}", report_json(results));
  } else {
    console->line("Summary:");
    for (const auto& line : summary_table(results)) console->line(line);
  }
  if (!scan.errors.empty() && status == 0) status = exit_status(ReturnCode::FileNotFound);
  for (const auto& r : results)
    if (r.outcome == ImageOutcome::Failed && status == 0) {
      int e = exit_status(static_cast<ReturnCode>(r.return_code));
      status = e ? e : 1;
    }
  if (status == 0 && g_batch_interrupted.load()) status = 130;
  return status;
}

}  // namespace vhdkit::cli
