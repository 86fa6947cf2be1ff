/**
 * One measurement of the scale suite's file-watcher rows, in a process of its own
 * (`node --expose-gc tree.ts <raw|ours> <root> <files>`): a watcher over `root` (a tree the suite built, `files`
 * files in directories of 100), its initial scan delivered to a consumer that counts it. Prints the time until the
 * watcher is ready (raw chokidar's `ready`, our `Connected`, which comes once the scan is delivered) and the heap it
 * holds after a full GC.
 */
import { FsWatcher } from "@streamemit/fs-watcher"
import { watch } from "chokidar"
import { Effect, Exit, Scope, Stream } from "effect"
import { heapUsedAfterGc } from "./measure.ts"

const [mode, root, count] = process.argv.slice(2) as ["raw" | "ours", string, string]
const files = Number(count)

const before = await heapUsedAfterGc()
let added = 0
let readyMs: number
let close: () => Promise<void>
const started = performance.now()
if (mode === "raw") {
  const watcher = watch(root, { followSymlinks: false, persistent: true })
  watcher.on("add", () => added++)
  watcher.on("error", () => {})
  await new Promise<void>((resolve) => watcher.once("ready", () => resolve()))
  readyMs = performance.now() - started
  close = () => watcher.close()
} else {
  const scope = Effect.runSync(Scope.make())
  const handle = await Effect.runPromise(Scope.provide(FsWatcher.make({ paths: root }), scope))
  Effect.runFork(
    Stream.runForEach(handle.messages, (change) =>
      Effect.sync(() => {
        if (change._tag === "Add") added++
      })
    )
  )
  await Effect.runPromise(handle.awaitConnection)
  readyMs = performance.now() - started
  close = () => Effect.runPromise(Scope.close(scope, Exit.void))
}
const heapBytes = (await heapUsedAfterGc()) - before
if (added !== files) throw new Error(`the initial scan delivered ${added} files of ${files}`)
await close()
console.log(JSON.stringify({ readyMs, heapBytes }))
process.exit(0)
