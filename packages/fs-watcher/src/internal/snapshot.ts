/**
 * The snapshot of a tree the consumer has processed, and its journal: the format on disk, reading it back after a
 * crash, and keeping it as changes are handed out and acknowledged.
 *
 * @internal
 */
import type * as Fs from "node:fs"
import * as FsSync from "node:fs"
import * as FsPromises from "node:fs/promises"
import { Checkpoint } from "@streamemit/core"
import type { Change } from "../FsWatcher.ts"
import { type Kind, kindOf } from "./coalescer.ts"

/** What is known of a path: its kind, and for a file what tells a change (from a snapshot or an event's stats). */
export interface Known {
  readonly kind: Kind
  readonly size?: number | undefined
  readonly mtimeMs?: number | undefined
  readonly ino?: number | undefined
}

export const knownOf = (kind: Kind, stats: Fs.Stats | undefined): Known =>
  kind === "file" && stats !== undefined ? { kind, size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino } : { kind }

/**
 * A snapshot of the tree the consumer has processed: when it was written, every path it knew, and the paths it may
 * have seen changed since (handed out, not known to be done): their state is reported again on start.
 */
export interface Snapshot {
  readonly savedAt: number
  readonly paths: Map<string, Known>
  readonly uncertain: Map<string, Kind>
}

/** A snapshot on disk: `[path, "dir"]` or `[path, "file", size, mtimeMs, ino]` per path. */
type Row = [string, "dir"] | [string, "file", number, number, number]

/** The journal of paths handed out since the last snapshot (`[path, kind]` per line), and the one being replaced. */
const journalOf = (path: string) => ({ current: `${path}.journal`, previous: `${path}.journal.old` })

const journalLines = async (path: string): Promise<Array<[string, Kind]>> => {
  const text = await FsPromises.readFile(path, "utf8").catch((cause: NodeJS.ErrnoException) => {
    if (cause.code === "ENOENT") return ""
    throw cause
  })
  const lines: Array<[string, Kind]> = []
  for (const line of text.split("\n")) {
    if (line === "") continue
    try {
      lines.push(JSON.parse(line) as [string, Kind])
    } catch {
      // A line torn by a crash mid-write: the path it named was being handed out; the entries before it count.
    }
  }
  return lines
}

/** The snapshot at `path` with what its journals add, `undefined` when there is none; throws when corrupt. */
export const readSnapshot = async (path: string): Promise<Snapshot | undefined> => {
  let text: string
  try {
    text = await FsPromises.readFile(path, "utf8")
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw cause
  }
  const parsed = JSON.parse(text) as { savedAt?: unknown; paths?: unknown; uncertain?: unknown }
  if (!Number.isSafeInteger(parsed.savedAt) || !Array.isArray(parsed.paths)) throw new Error("not a snapshot")
  const paths = new Map<string, Known>()
  for (const row of parsed.paths as Array<Row>) {
    if (!Array.isArray(row) || typeof row[0] !== "string") throw new Error("not a snapshot row")
    paths.set(row[0], row[1] === "dir" ? { kind: "dir" } : { kind: "file", size: row[2], mtimeMs: row[3], ino: row[4] })
  }
  const uncertain = new Map<string, Kind>(
    Array.isArray(parsed.uncertain) ? (parsed.uncertain as Array<[string, Kind]>) : []
  )
  const journal = journalOf(path)
  for (const [p, kind] of await journalLines(journal.previous)) uncertain.set(p, kind)
  for (const [p, kind] of await journalLines(journal.current)) uncertain.set(p, kind)
  return { savedAt: parsed.savedAt as number, paths, uncertain }
}

/**
 * What the consumer has processed, in order, and what it was handed and has not finished (it may have seen it).
 * Before a change is handed out its path goes into the journal (one append per batch, not fsynced: it survives the
 * process's death, not the machine's), so a restart reports the state of every path the consumer may have seen.
 */
export class SnapshotKeeper {
  private readonly processed: Map<string, Known>
  private readonly unsettled = new Map<string, { readonly kind: Kind; count: number }>()
  private readonly journal: { readonly current: string; readonly previous: string }
  private readonly file: string
  private readonly snapshot: Snapshot | undefined
  private dirty = false

  constructor(file: string, snapshot: Snapshot | undefined) {
    this.file = file
    this.snapshot = snapshot
    this.processed = new Map(snapshot?.paths)
    this.journal = journalOf(file)
    // What a crash left in the journals stays there until a snapshot accounts for it.
    const inherited = [...(snapshot?.uncertain ?? [])]
    if (inherited.length > 0) {
      FsSync.appendFileSync(this.journal.current, inherited.map((entry) => `${JSON.stringify(entry)}\n`).join(""))
      FsSync.rmSync(this.journal.previous, { force: true })
    }
  }

  /** Journals a batch before it is handed out. */
  handOut(changes: ReadonlyArray<Change>): void {
    let lines = ""
    for (const change of changes) {
      const kind = kindOf(change)
      lines += `${JSON.stringify([change.path, kind])}\n`
      const entry = this.unsettled.get(change.path)
      if (entry === undefined) this.unsettled.set(change.path, { kind, count: 1 })
      else entry.count++
    }
    if (lines !== "") FsSync.appendFileSync(this.journal.current, lines)
  }

  /** A change whose work is done, and every change before it. */
  done(change: Change): void {
    this.dirty = true
    const entry = this.unsettled.get(change.path)
    if (entry !== undefined && --entry.count === 0) this.unsettled.delete(change.path)
    if (change._tag === "Add" || change._tag === "AddDir") {
      this.processed.set(change.path, knownOf(kindOf(change), change.stats))
    } else if (change._tag === "Change") this.processed.set(change.path, knownOf("file", change.stats))
    else this.processed.delete(change.path)
  }

  /** Writes the snapshot when something changed since the last write; `undefined` when nothing did. */
  write(): Promise<void> | undefined {
    if (!this.dirty && this.snapshot !== undefined && this.unsettled.size === 0) return undefined
    this.dirty = false
    const rows: Array<Row> = []
    for (const [path, known] of this.processed) {
      rows.push(
        known.kind === "dir" ? [path, "dir"] : [path, "file", known.size ?? -1, known.mtimeMs ?? -1, known.ino ?? -1]
      )
    }
    const uncertainRows = Array.from(this.unsettled, ([path, entry]): [string, Kind] => [path, entry.kind])
    const text = JSON.stringify({ savedAt: Date.now(), paths: rows, uncertain: uncertainRows })
    // In the same turn: the journal so far is covered by this snapshot once it is written; what is handed out
    // from now on goes into a new one. The old one is removed only after the snapshot is in place.
    const journal = this.journal
    if (FsSync.existsSync(journal.previous)) {
      FsSync.appendFileSync(
        journal.previous,
        FsSync.existsSync(journal.current) ? FsSync.readFileSync(journal.current) : ""
      )
      FsSync.rmSync(journal.current, { force: true })
    } else if (FsSync.existsSync(journal.current)) FsSync.renameSync(journal.current, journal.previous)
    return Checkpoint.writeAtomically(this.file, text).then(() => FsPromises.rm(journal.previous, { force: true }))
  }
}
