/**
 * A rescan (after lost events, or on a start from a snapshot): the scan's entries against what the consumer was
 * told, as the changes that make up the difference, each marked `reconciled`.
 *
 * @internal
 */
import type * as Fs from "node:fs"
import type { Change } from "../FsWatcher.ts"
import { type Kind, kindOf } from "./coalescer.ts"
import type { Known } from "./snapshot.ts"

type Found = Change & { readonly _tag: "Add" | "AddDir" }

export class Reconciler {
  private readonly scanned = new Set<string>()
  private readonly reported: Map<string, Known>
  private readonly uncertain: Map<string, Kind>
  private readonly changedSince: number
  private readonly withStats: (stats: Fs.Stats | undefined) => { readonly stats?: Fs.Stats }
  private readonly push: (change: Change) => void

  /**
   * `reported`: what the consumer was told of each path; `uncertain`: paths it was handed and may not have
   * finished (their state now is reported whatever `reported` says); a file modified at or after `changedSince`
   * counts as changed when its stats are not known.
   */
  constructor(
    reported: Map<string, Known>,
    uncertain: Map<string, Kind>,
    changedSince: number,
    withStats: (stats: Fs.Stats | undefined) => { readonly stats?: Fs.Stats },
    push: (change: Change) => void
  ) {
    this.reported = reported
    this.uncertain = uncertain
    this.changedSince = changedSince
    this.withStats = withStats
    this.push = push
  }

  /** An entry of the scan. */
  found(change: Found, stats: Fs.Stats | undefined): void {
    const push = this.push
    this.scanned.add(change.path)
    const before = this.reported.get(change.path)
    const kind = kindOf(change)
    if (before === undefined) {
      push({ ...change, initial: false, reconciled: true })
      return
    }
    // Handed out before the crash, not known to be done: its state now, whatever the snapshot says.
    if (this.uncertain.has(change.path) && before.kind === kind) {
      push(
        kind === "dir"
          ? { ...change, initial: false, reconciled: true }
          : { _tag: "Change", path: change.path, ...this.withStats(stats), reconciled: true }
      )
      return
    }
    if (before.kind !== kind) {
      push(removal(change.path, before.kind))
      push({ ...change, initial: false, reconciled: true })
      return
    }
    if (kind !== "file") return
    // Known with its stats (a snapshot): changed when size, time or inode differ; else by time since the loss.
    const changed =
      stats === undefined ||
      (before.mtimeMs !== undefined
        ? stats.size !== before.size || stats.mtimeMs !== before.mtimeMs || stats.ino !== before.ino
        : stats.mtimeMs >= this.changedSince)
    if (changed) push({ _tag: "Change", path: change.path, ...this.withStats(stats), reconciled: true })
  }

  /** The scan is complete: what was reported and not found was removed meanwhile. */
  missing(): void {
    // Parents first, so children follow them.
    const missing = [...this.reported]
      .filter(([path]) => !this.scanned.has(path))
      .sort(([a], [b]) => a.length - b.length)
    for (const [path, known] of missing) {
      if (this.reported.has(path)) this.push(removal(path, known.kind))
    }
    // The consumer may have seen these added after the snapshot: gone now, so say so.
    const reportedMissing = new Set(missing.map(([path]) => path))
    for (const [path, kind] of this.uncertain) {
      if (!this.scanned.has(path) && !reportedMissing.has(path)) this.push(removal(path, kind))
    }
    // The scan is over; the watcher's listeners keep this object for the connection's life, not its paths.
    this.scanned.clear()
  }
}

const removal = (path: string, kind: Kind): Change =>
  kind === "dir" ? { _tag: "UnlinkDir", path, reconciled: true } : { _tag: "Unlink", path, reconciled: true }
