// Killing a detached child's whole process group (a CLI and the children it started) and waiting
// until every one of them has exited: a SIGKILLed process can live on for a moment, and a rerun that
// starts then would find its locks still held.
import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** Members of process group `group` that have not exited (zombies count as exited). */
function liveMembers(group: number): number[] {
  const live: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // "pid (comm) state ppid pgrp ...": the command may hold spaces; fields follow the last ")".
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(pgrp) === group && state !== "Z" && state !== "X") live.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return live;
}

/** SIGKILLs the group led by `pid` and resolves once none of its members runs (10 s at most). */
export async function killGroup(pid: number): Promise<void> {
  process.kill(-pid, "SIGKILL");
  for (let i = 0; i < 200 && liveMembers(pid).length > 0; i++) await sleep(50);
}
