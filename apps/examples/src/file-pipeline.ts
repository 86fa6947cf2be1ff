/**
 * A file-watcher pipeline (the guide's example 3): a directory watched with `FsWatcher.stream`, each new or changed
 * `.txt` file read and its words counted, removals noted, the initial scan left out. The guide wired Node's
 * `fs.watch` into `asyncPush` by hand (missing renames, lost events, no glob ignores); chokidar and the
 * connector's overflow handling replace that.
 */
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { FsWatcher } from "@streamemit/fs-watcher"
import { Effect, Stream } from "effect"
import { runWhenMain } from "./main.ts"

export const program = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "example-pipeline-"))),
    (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
  )
  yield* Effect.promise(() => Fs.writeFile(Path.join(dir, "existing.txt"), "its add is not reported: initial scan"))
  const handle = yield* FsWatcher.make({ paths: dir, initial: false, ignored: "**/*.tmp" })
  yield* handle.awaitConnection
  // The work the pipeline sees happen.
  yield* Effect.promise(async () => {
    await Fs.writeFile(Path.join(dir, "a.txt"), "one two three")
    await Fs.writeFile(Path.join(dir, "ignored.tmp"), "never seen")
    await Fs.writeFile(Path.join(dir, "b.txt"), "four five")
    await Fs.rm(Path.join(dir, "existing.txt"))
  })
  const report = yield* handle.messages.pipe(
    Stream.filter((change) => change.path.endsWith(".txt")),
    Stream.take(3),
    Stream.mapEffect((change) =>
      change._tag === "Add" || change._tag === "Change"
        ? Effect.map(
            Effect.promise(() => Fs.readFile(change.path, "utf8").catch(() => "")),
            (text) => `${Path.basename(change.path)}: ${text.split(/\s+/).filter(Boolean).length} words`
          )
        : Effect.succeed(`${Path.basename(change.path)}: ${change._tag.toLowerCase()}`)
    ),
    Stream.runCollect
  )
  return { report }
})

runWhenMain(import.meta.url, program)
