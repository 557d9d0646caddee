"""Benchmark badge printing: one WeasyPrint document ("plain") against Convene's chunks in a process pool.

    python bench/badges.py                  # 300 and 1,000 badges on Avery 5392
    python bench/badges.py --sizes 60 300   # other batch sizes

Three ways: "plain" is one WeasyPrint document; "convene" is render_badges_pdf as the print jobs call
it (in one document below POOL_MIN_BADGES, else chunks in a pool, merged with one copy of each font);
"pooled" forces the pool and the merge at any size, to show what the pool costs where it is skipped.

Each run happens in a fresh child process, so one run's memory cannot flatter or burden the next.
Time is measured inside the child from the badge data to the finished PDF on disk: Convene's way
includes starting its pool (forkserver, each worker importing WeasyPrint and loading fonts), making
the QR codes and merging with pypdf; the plain way imports WeasyPrint before its clock starts.
Memory is sampled every 20 ms with psutil over the child and all its descendants: peak RSS sums
resident memory (pages a worker shares with the forkserver it was forked from count once per
process, which overstates Convene's peak, never the plain one's); peak PSS splits shared pages.
CPU seconds (user + system over the tree) show the work done, which other load on the machine
barely changes; wall-clock seconds need two idle cores to show what the pool gains.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GIVEN = ["Amina", "Omar", "Sofía", "Joseph", "Mariam", "Yu-ting", "François", "Ngozi", "Irina", "Kofi", "Zoë",
         "Michelle", "Ramón", "Ingrid", "Jennifer", "Ahmed", "محمد", "فاطمة", "प्रिया", "अमित", "王芳", "李娜",
         "አበበ", "መሰረት", "Nguyễn Thị", "Trần Văn", "Maximiliana", "Christopher-Alexander"]
FAMILY = ["Hassan", "Farouk", "Morales", "Mensah", "Tadros", "Lin", "Bérubé", "Adeyemi", "Volkova", "Boateng",
          "Ångström", "Carter", "Ibáñez", "Solberg", "Novak", "Nur", "عبد الله", "السيد", "शर्मा", "कुमार", "王",
          "李", "ቢቂላ", "ተስፋዬ", "Minh Khai", "Hùng", "Wolfeschlegelsteinhausenbergerdorff", "Papadopoulos"]
ORGANIZATIONS = ["City of Dayton", "Welcoming Workforce Alliance", "Delaware Valley Workforce Board",
                 "Salt City Community College", "Detroit Welcoming Center", "مؤسسة الأمل للتنمية",
                 "दिल्ली नगर निगम", "北京市人民政府", "የአዲስ አበባ ከተማ አስተዳደር",
                 "Ủy ban Nhân dân Thành phố Hồ Chí Minh",
                 "The International Association of Municipal Workforce Development and Newcomer Integration "
                 "Professionals"]
ROLES = [("Delegate", "#0b6e4f"), ("Speaker", "#b42318"), ("TA provider", "#b54708"), ("Staff", "#1d2430")]


def make_badges(count: int, seed: int = 6):
    """`count` realistic badges: names in several scripts, some long, pronouns, delegations, roles."""
    from convene.printing import BadgeData

    rng = random.Random(seed)
    badges = []
    for n in range(count):
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        role, colour = ROLES[0] if rng.random() < 0.75 else rng.choice(ROLES[1:])
        badges.append(BadgeData(
            registration_id=n + 1,
            checkin_token="".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_")
                                  for _ in range(22)),
            name=given, full_name=f"{given} {family}",
            pronouns=rng.choice(["", "she/her", "he/him", "they/them"]),
            organization=rng.choice(ORGANIZATIONS),
            delegation=rng.choice(["", "Maryland", "Ohio", "Philadelphia", "Minneapolis–Saint Paul"]),
            role_label=role, role_colour=colour,
            convening="Skilled Immigrant Integration Program — Toronto Convening",
        ))
    return badges


def run_one(way: str, count: int, out: str, workers: int | None, chunk_sheets: int) -> dict:
    """In the child process: render `count` badges one way and report seconds and pages.

    The plain way imports WeasyPrint before the clock starts; Convene's way never imports it in
    this process, and its pool's forkserver imports it (and loads the fonts) inside the timing.
    """
    from convene.printing import LAYOUTS
    from convene.printing.batch import render_badges_pdf, shutdown_pool

    layout = LAYOUTS["avery-5392"]
    badges = make_badges(count)
    if way == "plain":
        from convene.printing.documents import badges_html, write_pdf

    start = time.perf_counter()
    if way == "plain":
        pdf = write_pdf(badges_html(badges, layout))
        Path(out).write_bytes(pdf)
        from pypdf import PdfReader

        pages = len(PdfReader(out).pages)
    else:
        if way == "pooled":  # the pool and merged chunks whatever the size (Convene's way skips the pool when small)
            from convene.printing.batch import default_workers

            workers = workers or default_workers()
        pages = render_badges_pdf(badges, layout, out, workers=workers, chunk_sheets=chunk_sheets)
    seconds = time.perf_counter() - start
    shutdown_pool()
    return {"seconds": seconds, "pages": pages, "bytes": os.path.getsize(out)}


class TreeSampler:
    """Samples the memory of a process and all its descendants until stopped.

    `peak` is the largest sum of resident set sizes (RSS), which counts pages shared between a
    forkserver and the workers forked from it once per process; `peak_pss` is the largest sum of
    proportional set sizes, which splits shared pages between the processes sharing them.
    """

    def __init__(self, pid: int, interval: float = 0.02):
        import psutil

        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.peak_pss = 0
        self.cpu: dict[int, float] = {}  # pid -> user + system seconds, last seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        while not self._stop.is_set():
            rss = pss = 0
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for process in processes:
                try:
                    info = process.memory_full_info()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                rss += info.rss
                pss += getattr(info, "pss", info.rss)
                try:
                    times = process.cpu_times()
                    self.cpu[process.pid] = times.user + times.system
                except psutil.NoSuchProcess:
                    pass
            self.peak = max(self.peak, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def measure(way: str, count: int, workers: int | None, chunk_sheets: int) -> dict:
    """Run one way in a fresh child process and sample its process tree's memory."""
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / f"{way}-{count}.pdf")
        command = [sys.executable, __file__, "--child", way, str(count), out, "--chunk-sheets", str(chunk_sheets)]
        if workers is not None:
            command += ["--workers", str(workers)]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        with TreeSampler(child.pid) as sampler:
            output, _ = child.communicate()
        if child.returncode:
            raise SystemExit(f"{way} run for {count} badges failed")
        result = json.loads(output.strip().splitlines()[-1])
        result["peak_mb"] = sampler.peak / 2**20
        result["peak_pss_mb"] = sampler.peak_pss / 2**20
        result["cpu"] = sum(sampler.cpu.values())
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 1000])
    parser.add_argument("--workers", type=int, default=None, help="pool size (default: one per core)")
    parser.add_argument("--chunk-sheets", type=int, default=10)
    parser.add_argument("--child", nargs=3, metavar=("WAY", "COUNT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        way, count, out = args.child
        print(json.dumps(run_one(way, int(count), out, args.workers, args.chunk_sheets)), flush=True)
        return

    import weasyprint

    from convene.printing.batch import default_workers

    workers = args.workers or default_workers()
    print(f"Badges on Avery 5392 (6 per US Letter sheet); WeasyPrint {weasyprint.__version__}, "
          f"{os.cpu_count()} CPUs, pool of {workers}, chunks of {args.chunk_sheets} sheets "
          f"({args.chunk_sheets * 6} badges); load average at start {os.getloadavg()[0]:.2f}")
    print("peak RSS: largest sum of resident memory over the process tree (shared pages counted per process);")
    print("peak PSS: the same with shared pages split between the processes sharing them.")
    print("CPU s: user + system time of the whole process tree (sampled), which load on the machine barely changes.")
    print(f"{'badges':>7}  {'way':<8} {'seconds':>8} {'CPU s':>6} {'peak RSS MB':>12} {'peak PSS MB':>12} "
          f"{'pages':>6} {'PDF KB':>7}")
    ratios = []
    for count in args.sizes:
        plain = measure("plain", count, args.workers, args.chunk_sheets)
        convene = measure("convene", count, args.workers, args.chunk_sheets)
        pooled = measure("pooled", count, args.workers, args.chunk_sheets)
        for way, result in (("plain", plain), ("convene", convene), ("pooled", pooled)):
            print(f"{count:>7}  {way:<8} {result['seconds']:>8.1f} {result['cpu']:>6.1f} {result['peak_mb']:>12.0f} "
                  f"{result['peak_pss_mb']:>12.0f} {result['pages']:>6} {result['bytes'] / 1024:>7.0f}", flush=True)
        speed = plain["seconds"] / convene["seconds"]
        rss, pss = convene["peak_mb"] / plain["peak_mb"], convene["peak_pss_mb"] / plain["peak_pss_mb"]
        ratios.append((count, speed, rss, pss))
        print(f"{'':>7}  {'ratio':<8} {speed:>7.2f}× {'':>6} {rss:>11.2f}× {pss:>11.2f}×   (plain ÷ Convene for time, "
              "Convene ÷ plain for memory)", flush=True)
        print(f"{'':>7}  pooled ÷ plain: time {pooled['seconds'] / plain['seconds']:.2f}×, PDF size "
              f"{pooled['bytes'] / plain['bytes']:.2f}×; Convene ÷ plain PDF size {convene['bytes'] / plain['bytes']:.2f}× "
              "(target: merged PDF ≤ 1.2× plain's size)", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    for count, speed, rss, pss in ratios:
        verdict = "meets" if speed >= 1.8 and rss < 1 else "misses"
        print(f"{count} badges: Convene's way {speed:.2f}× as fast, peak memory {rss:.2f}× (RSS) / {pss:.2f}× (PSS) "
              f"of plain — {verdict} the target (≥ 1.8× as fast, lower peak RSS)")


if __name__ == "__main__":
    main()
