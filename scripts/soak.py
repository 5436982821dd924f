#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# make soak: vhdkitd under mixed load from several local users while it is SIGKILLed and restarted, on
# loopback only (its Unix socket) and bounded in time. Not part of make test.
#
# Clients (threads in one process per user, each process running as its user, so the daemon knows them by
# their peer credentials) send compactions (Full, Prezeroed, dry runs), state and validation calls,
# RequestStateChange(Terminate) on their own jobs, and listings, for --minutes; every --kill-every seconds
# the daemon is SIGKILLed and started again on the same socket and state folder. At the end, after a clean
# restart: no crash (the daemon never ended but by our SIGKILL or SIGTERM), every job record in a final
# state, every image checks clean (vhdkit check; qemu-img has no check for VHD) and reads what it read
# before (qemu-img compare with its pristine copy). Prints the figures and exits 0 when all of that holds.
import argparse, json, os, random, shutil, signal, socket, subprocess, sys, tempfile, threading, time

USERS = [(0, 0), (65534, 65534), (1, 1)]  # root, nobody, daemon: users every Debian system has


def http(sock_path, method, target, body=None, timeout=30):
    data = b"" if body is None else json.dumps(body).encode()
    req = (f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(req)
        chunks = []
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
    finally:
        s.close()
    head, _, payload = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return status, json.loads(payload) if payload.strip() else None


def client_main(args):
    """One user's clients: threads until the deadline; prints the counts as one JSON line."""
    images = args.images.split(",")
    deadline = time.time() + args.seconds
    counts, jobs, lock = {}, [], threading.Lock()

    def count(key):
        with lock:
            counts[key] = counts.get(key, 0) + 1

    def one(rng):
        op = rng.choice(["compact", "compact", "dry", "state", "validate", "list", "get", "terminate"])
        img = rng.choice(images)
        if op in ("compact", "dry"):
            body = {"Path": img, "Mode": rng.choice([0, 4])}
            if op == "dry":
                body["DryRun"] = True
            status, r = http(args.socket, "POST", "/v2/ImageManagementService/CompactVirtualHardDisk", body)
            if r and r.get("Job"):
                with lock:
                    jobs.append(r["Job"])
        elif op == "state":
            status, r = http(args.socket, "POST", "/v2/ImageManagementService/GetVirtualHardDiskState", {"Path": img})
        elif op == "validate":
            status, r = http(args.socket, "POST", "/v2/ImageManagementService/ValidateVirtualHardDisk", {"Path": img})
        elif op == "list":
            status, r = http(args.socket, "GET", "/v2/jobs")
        else:
            with lock:
                job = rng.choice(jobs) if jobs else None
            if job is None:
                return
            if op == "get":
                status, r = http(args.socket, "GET", job)
            else:
                status, r = http(args.socket, "POST", job + "/RequestStateChange", {"RequestedState": 4})
        count(f"{op} {status} {r.get('ReturnValue') if isinstance(r, dict) else None}")

    def loop(seed):
        rng = random.Random(seed)
        while time.time() < deadline:
            try:
                one(rng)
            except (OSError, ValueError, IndexError):
                count("unavailable")  # the daemon is being restarted
                time.sleep(0.2)

    threads = [threading.Thread(target=loop, args=(os.getuid() * 1000 + i,)) for i in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(counts), flush=True)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default="build")
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--kill-every", type=float, default=120)
    p.add_argument("--images-per-user", type=int, default=4)
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--socket", help=argparse.SUPPRESS)
    p.add_argument("--images", help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.client:
        return client_main(args)
    if os.geteuid() != 0:
        sys.exit("make soak runs as root: its clients act as three users")
    vhdkitd = os.path.abspath(f"{args.build}/src/daemon/vhdkitd")
    vhdkit = os.path.abspath(f"{args.build}/src/cli/vhdkit")
    work = tempfile.mkdtemp(prefix="vhdkit-soak-")
    os.chmod(work, 0o755)
    daemon, crashes, restarts, peak = None, 0, 0, 0
    try:
        images, pristine = {}, []
        for uid, gid in USERS:
            for i in range(args.images_per_user):
                img = f"{work}/u{uid}-{i}.vhd"
                run([vhdkit, "create", "--size", "64M", img])
                for off in random.Random(uid + i).sample(range(32), 10):
                    run([vhdkit, "write", img, str(off * 2 * 1024 * 1024), "--pattern", hex(1 + off), "--length", "1M"])
                for off in range(0, 64, 7):  # blocks of zeros that compaction releases
                    run([vhdkit, "write", img, f"{off}M", "--pattern", "0", "--length", "512K"])
                shutil.copy(img, img + ".pristine")
                pristine.append(img)
                os.chown(img, uid, gid)
                images.setdefault(uid, []).append(img)
        sock, state, log = f"{work}/vhdkitd.sock", f"{work}/state", open(f"{work}/vhdkitd.log", "w")

        def start():
            d = subprocess.Popen([vhdkitd, "--config", "/dev/null", "--socket", sock, "--state-dir", state],
                                 stderr=log, stdout=log)
            for _ in range(300):
                try:
                    http(sock, "GET", "/v2/jobs", timeout=2)
                    return d
                except OSError:
                    time.sleep(0.02)
            raise SystemExit("vhdkitd did not start; see " + log.name)

        daemon = start()
        seconds = args.minutes * 60
        per_user = [args.clients // len(USERS) + (1 if k < args.clients % len(USERS) else 0) for k in range(len(USERS))]
        clients = []
        for (uid, gid), n in zip(USERS, per_user):
            cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "/usr/bin/python3",
                   os.path.abspath(__file__), "--client", "--socket", sock, "--images", ",".join(images[uid]),
                   "--seconds", str(seconds), "--threads", str(n)]
            clients.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
        t0 = last_kill = time.time()
        while any(c.poll() is None for c in clients):
            peak = max(peak, rss_kib(daemon.pid))
            if daemon.poll() is not None:
                crashes += 1
                print(f"vhdkitd ended by itself (status {daemon.returncode}); restarting", flush=True)
                daemon = start()
            if time.time() - last_kill >= args.kill_every and time.time() - t0 < seconds - 5:
                daemon.send_signal(signal.SIGKILL)
                daemon.wait()
                daemon = start()
                restarts += 1
                last_kill = time.time()
            time.sleep(0.5)
        counts = {}
        for c in clients:
            for k, v in json.loads(c.stdout.read().strip().splitlines()[-1]).items():
                counts[k] = counts.get(k, 0) + v
        # The end: wait for the jobs still running, stop cleanly, start again, read every record.
        deadline = time.time() + 120
        while time.time() < deadline:
            _, r = http(sock, "GET", "/v2/jobs")
            if all(j["JobState"] >= 7 for j in r["Jobs"]):
                break
            time.sleep(0.5)
        daemon.send_signal(signal.SIGTERM)
        if daemon.wait() != 0:
            crashes += 1
        daemon = start()
        _, r = http(sock, "GET", "/v2/jobs")
        states = {}
        for j in r["Jobs"]:
            states[j["JobStatus"]] = states.get(j["JobStatus"], 0) + 1
        unfinished = sum(1 for j in r["Jobs"] if j["JobState"] < 7)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait()
        daemon = None
        bad = []
        for img in pristine:
            if subprocess.run([vhdkit, "check", img], capture_output=True).returncode != 0:
                bad.append(img + " (vhdkit check)")
            if subprocess.run(["qemu-img", "compare", "-q", "-f", "vpc", "-F", "vpc", img + ".pristine", img]).returncode:
                bad.append(img + " (content)")
        requests = sum(v for k, v in counts.items() if k != "unavailable")
        print(f"soak: {args.clients} clients of {len(USERS)} users for {args.minutes} min, vhdkitd SIGKILLed and "
              f"restarted {restarts} times; {requests} requests answered, {counts.get('unavailable', 0)} refused "
              f"while it restarted")
        for k in sorted(counts):
            print(f"  {k}: {counts[k]}")
        print(f"  job records after a clean restart: {len(r['Jobs'])} ({states}); not final: {unfinished}")
        print(f"  vhdkitd peak RSS {peak} KiB; crashes {crashes}; images valid and unchanged: "
              f"{len(pristine) - len(bad)} of {len(pristine)} {bad if bad else ''}")
        return 0 if crashes == 0 and unfinished == 0 and not bad else 1
    finally:
        if daemon is not None:
            daemon.kill()
            daemon.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
