/**
 * A throwaway single-node Slurm cluster for tests: munged, slurmctld and slurmd
 * started from the Debian packages (`scripts/install-slurm.sh`) with every file
 * in one temporary folder, on free ports, with their own munge key and socket,
 * so that it touches neither /etc nor a Slurm or munge already running here.
 *
 * ```ts
 * const cluster = await startSlurmCluster();     // throws SlurmUnavailable with the reason
 * execFileSync("sbatch", [...], { env: cluster.env });   // SLURM_CONF points at the cluster
 * await cluster.stop();                          // kills the daemons, removes the folder
 * ```
 *
 * No systemd is needed: the daemons run in the foreground (`-F` / `-D`) as
 * children of the test process, which kills them on stop (and on exit).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, chmodSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

/** Why a cluster could not be started (missing packages, a daemon that died, a timeout). */
export class SlurmUnavailable extends Error {
  override name = "SlurmUnavailable";
}

/** Absolute paths of the programs the cluster needs. */
export interface SlurmBinaries {
  munged: string;
  slurmctld: string;
  slurmd: string;
  sbatch: string;
  sinfo: string;
  squeue: string;
  scontrol: string;
  scancel: string;
}

/** A running single-node cluster. */
export interface SlurmCluster {
  /** Environment for Slurm clients (sbatch, squeue, ...): the caller's, minus SLURM_* job variables, plus SLURM_CONF. */
  env: NodeJS.ProcessEnv;
  /** The cluster's slurm.conf. */
  conf: string;
  /** The temporary folder holding config, key, state, spool and logs. */
  dir: string;
  /** The node's name (the short host name) and its partition. */
  nodeName: string;
  partition: string;
  /** Resolved client and daemon programs. */
  bin: SlurmBinaries;
  /** Seconds from the first daemon's start to the node being idle. */
  startSeconds: number;
  /** The last `lines` lines of each daemon log, for failure messages. */
  logs(lines?: number): string;
  /** Cancel any jobs, stop the daemons and remove the folder (idempotent). */
  stop(): Promise<void>;
}

/** Options of {@link startSlurmCluster}. */
export interface StartOptions {
  /** Give up when the node is not idle after this many ms (default 30,000). */
  timeoutMs?: number;
  /** Partition name (default "debug"). */
  partition?: string;
  /** Folders to find the programs in (default: PATH and the usual sbin folders). */
  searchDirs?: readonly string[];
}

/** Where Debian puts the daemons (often missing from a non-root PATH). */
const EXTRA_DIRS = ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin", "/bin"];

/** PATH's folders, then the usual sbin and bin folders. */
function searchDirs(): string[] {
  return [...(process.env.PATH ?? "").split(path.delimiter).filter(Boolean), ...EXTRA_DIRS];
}

/** The executable `name` in `dirs` (default: PATH and the usual sbin folders), or null. */
export function which(name: string, dirs: readonly string[] = searchDirs()): string | null {
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * Find munged, slurmctld, slurmd and the clients.
 *
 * @param dirs Folders to search (default: PATH and the usual sbin folders).
 * @returns The paths, or the names of the missing programs.
 */
export function findSlurmBinaries(dirs: readonly string[] = searchDirs()): { bin: SlurmBinaries; missing: [] } | { bin: null; missing: string[] } {
  const names = ["munged", "slurmctld", "slurmd", "sbatch", "sinfo", "squeue", "scontrol", "scancel"] as const;
  const found: Partial<Record<(typeof names)[number], string>> = {};
  const missing: string[] = [];
  for (const n of names) {
    const p = which(n, dirs);
    if (p) found[n] = p;
    else missing.push(n);
  }
  if (missing.length) return { bin: null, missing };
  return { bin: found as SlurmBinaries, missing: [] };
}

/** Run a program; resolves with its stdout, rejects with a one-line reason. */
export function run(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env, timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(file)} ${args.join(" ")}: ${(stderr || err.message).trim().split("\n").pop() ?? ""}`));
      else resolve(stdout);
    });
  });
}

/** A TCP port that is free on 127.0.0.1 right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

/** The hardware line `slurmd -C` prints (NodeName=... CPUs=... RealMemory=...), without NodeName; a CPU-count fallback. */
async function nodeHardware(slurmd: string): Promise<string> {
  try {
    const out = await run(slurmd, ["-C"], process.env, 10_000);
    const line = out.split("\n").find((l) => l.startsWith("NodeName="));
    if (line) return line.replace(/^NodeName=\S+\s*/, "").trim();
  } catch {
    // fall through
  }
  return `CPUs=${os.availableParallelism()}`;
}

/** The caller's environment without variables of an enclosing Slurm job or user defaults that would change sbatch's behaviour. */
function cleanEnv(conf: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(SLURM_|SBATCH_|SALLOC_|SRUN_|SQUEUE_|SINFO_|SCONTROL_)/.test(k)) env[k] = v;
  }
  env.SLURM_CONF = conf;
  return env;
}

/** Everything the config needs to know. */
interface ConfInput {
  dir: string;
  user: string;
  host: string;
  hardware: string;
  ctldPort: number;
  slurmdPort: number;
  partition: string;
  mungeSocket: string;
}

/**
 * A minimal slurm.conf for one node: munge on our own socket, no accounting,
 * no cgroups (proctrack/linuxproc, task/none), cons_tres on cores, state, spool,
 * pid and log files in `dir`.
 */
export function slurmConf(c: ConfInput): string {
  return [
    "# single-node test cluster written by test/slurm-cluster.ts",
    "ClusterName=cftest",
    `SlurmctldHost=${c.host}(127.0.0.1)`,
    `SlurmctldPort=${c.ctldPort}`,
    `SlurmdPort=${c.slurmdPort}`,
    `SlurmUser=${c.user}`,
    `SlurmdUser=${c.user}`,
    "AuthType=auth/munge",
    "CredType=cred/munge",
    `AuthInfo=socket=${c.mungeSocket}`,
    `StateSaveLocation=${c.dir}/state`,
    `SlurmdSpoolDir=${c.dir}/spool`,
    `SlurmctldPidFile=${c.dir}/slurmctld.pid`,
    `SlurmdPidFile=${c.dir}/slurmd.pid`,
    `SlurmctldLogFile=${c.dir}/slurmctld.log`,
    `SlurmdLogFile=${c.dir}/slurmd.log`,
    "SlurmctldDebug=info",
    "SlurmdDebug=info",
    "ProctrackType=proctrack/linuxproc",
    "TaskPlugin=task/none",
    "JobAcctGatherType=jobacct_gather/none",
    "AccountingStorageType=accounting_storage/none",
    "JobCompType=jobcomp/none",
    "MpiDefault=none",
    "SchedulerType=sched/builtin",
    "SelectType=select/cons_tres",
    "SelectTypeParameters=CR_Core",
    "ReturnToService=2",
    "MessageTimeout=5",
    "KillWait=2",
    `NodeName=${c.host} NodeAddr=127.0.0.1 ${c.hardware} State=UNKNOWN`,
    `PartitionName=${c.partition} Nodes=${c.host} Default=YES MaxTime=INFINITE State=UP`,
    "",
  ].join("\n");
}

/** The last `n` lines of a file ("" when missing). */
function tail(file: string, n: number): string {
  if (!existsSync(file)) return "";
  return readFileSync(file, "utf8").trimEnd().split("\n").slice(-n).join("\n");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Start a single-node cluster and wait until its node is idle.
 *
 * @throws {SlurmUnavailable} When programs are missing, a daemon exits during
 *   start-up, or the node is not idle within `timeoutMs`; everything started is
 *   stopped and the folder removed first. The message says why, with log tails.
 */
export async function startSlurmCluster(options: StartOptions = {}): Promise<SlurmCluster> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const partition = options.partition ?? "debug";
  const found = findSlurmBinaries(options.searchDirs);
  if (!found.bin) {
    throw new SlurmUnavailable(`Slurm is not installed (missing ${found.missing.join(", ")}); on Debian run scripts/install-slurm.sh`);
  }
  const bin = found.bin;
  const t0 = performance.now();

  // munged insists that its socket folder be executable by everyone and its key private.
  const dir = mkdtempSync(path.join(os.tmpdir(), "cf-slurm-"));
  chmodSync(dir, 0o755);
  for (const sub of ["state", "spool", "munge"]) mkdirSync(path.join(dir, sub), { mode: 0o755 });
  chmodSync(path.join(dir, "munge"), 0o755);
  const key = path.join(dir, "munge", "munge.key");
  writeFileSync(key, randomBytes(1024), { mode: 0o400 });
  const mungeSocket = path.join(dir, "munge", "munge.socket");

  const conf = path.join(dir, "slurm.conf");
  const host = os.hostname().split(".")[0];
  const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
  const user = os.userInfo().username;
  writeFileSync(conf, slurmConf({ dir, user, host, hardware: await nodeHardware(bin.slurmd), ctldPort, slurmdPort, partition, mungeSocket }));
  const env = cleanEnv(conf);

  const children: { name: string; proc: ChildProcess; exited: boolean }[] = [];
  const killAll = (signal: NodeJS.Signals): void => {
    for (const c of children) if (!c.exited) c.proc.kill(signal);
  };
  // If the test process ends without stop(): no daemons or folder left behind.
  const onExit = (): void => {
    killAll("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", onExit);

  const logs = (lines = 15): string =>
    [
      ["munged", path.join(dir, "munge", "munged.log")],
      ["slurmctld", path.join(dir, "slurmctld.log")],
      ["slurmd", path.join(dir, "slurmd.log")],
      ["daemon output", path.join(dir, "daemons.out")],
    ]
      .map(([name, file]) => {
        const t = tail(file, lines);
        return t ? `--- ${name} (${file})\n${t}` : "";
      })
      .filter(Boolean)
      .join("\n");

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (children.some((c) => c.name === "slurmctld" && !c.exited)) {
      await run(bin.scancel, ["--quiet", `--user=${user}`], env, 5_000).catch(() => undefined);
    }
    // slurmd first (it ends job steps), then the controller, then munge
    for (const name of ["slurmd", "slurmctld", "munged"]) {
      const c = children.find((x) => x.name === name);
      if (!c || c.exited) continue;
      c.proc.kill("SIGTERM");
      const deadline = performance.now() + 5_000;
      while (!c.exited && performance.now() < deadline) await sleep(50);
      if (!c.exited) c.proc.kill("SIGKILL");
    }
    process.off("exit", onExit);
    rmSync(dir, { recursive: true, force: true });
  };

  const out = openSync(path.join(dir, "daemons.out"), "a");
  const startDaemon = (name: string, file: string, args: string[]): void => {
    const proc = spawn(file, args, { env, stdio: ["ignore", out, out] });
    const entry = { name, proc, exited: false };
    proc.on("exit", () => (entry.exited = true));
    proc.on("error", () => (entry.exited = true));
    children.push(entry);
  };
  const fail = async (why: string): Promise<never> => {
    const detail = logs();
    await stop();
    throw new SlurmUnavailable(`${why}${detail ? `\n${detail}` : ""}`);
  };
  const died = (): string | null => {
    const c = children.find((x) => x.exited);
    return c ? `${c.name} exited during start-up (code ${c.proc.exitCode ?? c.proc.signalCode})` : null;
  };

  try {
    startDaemon("munged", bin.munged, [
      "--foreground",
      `--key-file=${key}`,
      `--socket=${mungeSocket}`,
      `--pid-file=${path.join(dir, "munge", "munged.pid")}`,
      `--log-file=${path.join(dir, "munge", "munged.log")}`,
      `--seed-file=${path.join(dir, "munge", "munged.seed")}`,
    ]);
    // slurmctld and slurmd need the munge socket at start
    while (!existsSync(mungeSocket)) {
      if (died()) return await fail(died() ?? "");
      if (performance.now() - t0 > timeoutMs) return await fail(`munged did not create ${mungeSocket} within ${timeoutMs / 1000} s`);
      await sleep(20);
    }
    startDaemon("slurmctld", bin.slurmctld, ["-D", "-c", "-f", conf]);
    startDaemon("slurmd", bin.slurmd, ["-D", "-f", conf]);
    let state = "";
    while (state !== "idle") {
      const why = died();
      if (why) return await fail(why);
      if (performance.now() - t0 > timeoutMs) return await fail(`node ${host} not idle within ${timeoutMs / 1000} s (state: ${state || "no answer"})`);
      state = (await run(bin.sinfo, ["-h", "-N", "-n", host, "-o", "%T"], env, 3_000).catch(() => "")).trim();
      if (state !== "idle") await sleep(100);
    }
  } finally {
    closeSync(out);
  }
  return {
    env,
    conf,
    dir,
    nodeName: host,
    partition,
    bin,
    startSeconds: (performance.now() - t0) / 1000,
    logs,
    stop,
  };
}

/** One array task's final state as `scontrol show job` reports it. */
export interface TaskState {
  task: number;
  state: string;
  exitCode: string;
}

/** Job states after which a job no longer changes. */
const FINAL_STATES = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"]);

/** Parse `scontrol -o show job ID` (one line per array task). */
export function parseJobLines(text: string): TaskState[] {
  const out: TaskState[] = [];
  for (const line of text.split("\n")) {
    const field = (k: string): string | undefined => new RegExp(`(?:^|\\s)${k}=(\\S+)`).exec(line)?.[1];
    const task = field("ArrayTaskId");
    const state = field("JobState");
    if (task === undefined || state === undefined || !/^\d+$/.test(task)) continue;
    out.push({ task: Number(task), state, exitCode: field("ExitCode") ?? "" });
  }
  return out.sort((a, b) => a.task - b.task);
}

/**
 * Wait until every task in `tasks` of array job `jobId` has reached a final state
 * (completed jobs stay visible to scontrol for MinJobAge, 300 s by default).
 *
 * @throws When they have not all finished within `timeoutMs`.
 */
export async function waitForArray(cluster: SlurmCluster, jobId: string, tasks: number[], timeoutMs: number): Promise<TaskState[]> {
  const t0 = performance.now();
  let last: TaskState[] = [];
  for (;;) {
    const text = await run(cluster.bin.scontrol, ["-o", "show", "job", jobId], cluster.env, 5_000).catch(() => "");
    last = parseJobLines(text);
    const done = tasks.every((t) => last.some((s) => s.task === t && FINAL_STATES.has(s.state)));
    if (done) return last.filter((s) => tasks.includes(s.task));
    if (performance.now() - t0 > timeoutMs) {
      throw new Error(`job ${jobId} not finished after ${timeoutMs / 1000} s: ${JSON.stringify(last)}\n${cluster.logs()}`);
    }
    await sleep(200);
  }
}
