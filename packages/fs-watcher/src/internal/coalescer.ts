/**
 * Merging a watcher's events per path while the consumer is behind, never changing what happened.
 *
 * @internal
 */
import type * as Fs from "node:fs"
import type { Change } from "../FsWatcher.ts"

export type Kind = "file" | "dir"

interface Pending {
  /** What the consumer last saw of the path: its kind, or `undefined` when it did not exist for the consumer. */
  readonly before: Kind | undefined
  kind: Kind
  exists: boolean
  /** The path stopped existing at some point after the consumer last saw it (a delete, then maybe a re-create). */
  vanished: boolean
  /** Its first event came from the initial scan (before chokidar's `ready`). */
  readonly initial: boolean
  stats: Fs.Stats | undefined
}

/**
 * Merges events per path into what the consumer has not seen yet, never changing what happened: an `Add` then
 * `Change` is an `Add`; a `Change` then `Unlink` is an `Unlink`; an `Add` then `Unlink` is nothing; a path that
 * changed kind (file ↔ directory) is the removal of what the consumer knew, then the addition of what is there.
 * Insertion order of paths is kept.
 */
export class Coalescer {
  readonly pending = new Map<string, Pending>()
  merged = 0
  /** Paths pending whose first event came from the initial scan. */
  initialPending = 0

  add(change: Change, initial: boolean): void {
    const kind: Kind = change._tag === "AddDir" || change._tag === "UnlinkDir" ? "dir" : "file"
    const exists = change._tag === "Add" || change._tag === "Change" || change._tag === "AddDir"
    const stats = "stats" in change ? change.stats : undefined
    const previous = this.pending.get(change.path)
    if (previous === undefined) {
      // A Change or an unlink tells what the consumer saw before; an Add or AddDir, that it saw nothing.
      const before = exists && change._tag !== "Change" ? undefined : kind
      this.pending.set(change.path, { before, kind, exists, vanished: !exists, initial, stats })
      if (initial) this.initialPending++
      return
    }
    this.merged++
    if (!exists) previous.vanished = true
    previous.kind = kind
    previous.exists = exists
    previous.stats = stats
  }

  /** Emits merged states in path order while `emit` accepts; what is left stays pending. */
  flush(emit: (change: Change) => boolean): void {
    for (const [path, state] of this.pending) {
      this.pending.delete(path)
      if (state.initial) this.initialPending--
      let accepted = true
      for (const change of finalChanges(path, state)) accepted = emit(change) && accepted
      if (!accepted) return
    }
  }
}

const unlinkOf = (path: string, kind: Kind): Change =>
  kind === "dir" ? { _tag: "UnlinkDir", path } : { _tag: "Unlink", path }

const addOf = (path: string, state: Pending, initial: boolean): Change => {
  const stats = state.stats === undefined ? {} : { stats: state.stats }
  return state.kind === "dir" ? { _tag: "AddDir", path, initial, ...stats } : { _tag: "Add", path, initial, ...stats }
}

const finalChanges = (path: string, state: Pending): ReadonlyArray<Change> => {
  if (state.before === undefined) return state.exists ? [addOf(path, state, state.initial && !state.vanished)] : []
  if (!state.exists) return [unlinkOf(path, state.before)]
  if (state.kind !== state.before || (state.kind === "dir" && state.vanished)) {
    return [unlinkOf(path, state.before), addOf(path, state, false)]
  }
  if (state.kind === "dir") return []
  return [{ _tag: "Change", path, ...(state.stats === undefined ? {} : { stats: state.stats }) }]
}

export const kindOf = (change: Change): Kind =>
  change._tag === "AddDir" || change._tag === "UnlinkDir" ? "dir" : "file"
