/**
 * A consumer process for the snapshot test: watches a directory from a snapshot (written every 100 ms), appends
 * each change to a results file as `<tag> <path relative to the root>` (and `gap <delivery>`), then acknowledges
 * it. Prints "ready" once connected. Arguments: root, snapshot file, results file.
 */
import { appendFileSync } from "node:fs"
import * as Path from "node:path"
import { Delivery } from "@streamemit/core"
import { Effect, Stream } from "effect"
import { FsWatcher } from "../src/index.ts"

const [root, snapshot, results] = process.argv.slice(2) as [string, string, string]

const program = Effect.gen(function* () {
  const { handle, deliveries } = yield* FsWatcher.checkpointed({
    paths: root,
    snapshot: { path: snapshot, every: "100 millis" }
  })
  yield* handle.events.pipe(
    Stream.runForEach((event) =>
      Effect.sync(() => event._tag === "Gap" && appendFileSync(results, `gap ${event.delivery}\n`))
    ),
    Effect.forkScoped
  )
  yield* handle.awaitConnection
  process.stdout.write("ready\n")
  yield* Delivery.process(deliveries, (change) =>
    Effect.sync(() => appendFileSync(results, `${change._tag} ${Path.relative(root, change.path)}\n`)).pipe(
      Effect.andThen(Effect.sleep("1 millis"))
    )
  )
})

Effect.runPromise(Effect.scoped(program)).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
