/**
 * Resuming a watcher from a snapshot: what changed on disk while nothing watched comes first (reconciled, after a
 * `Gap` that says resumed), then live changes; what the consumer had not finished is not in the snapshot.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Delivery, Lifecycle } from "@streamemit/core"
import { Expect, Wait } from "@streamemit/testkit"
import { Duration, Effect, Stream } from "effect"
import { FsWatcher } from "../src/index.ts"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.realpathSync(Fs.mkdtempSync(Path.join(Os.tmpdir(), "streamemit-fs-snap-")))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** Runs a watcher from the snapshot, processing every change, until `until` holds; returns what it saw. */
const watchUntil = (
  root: string,
  snapshot: string,
  until: (seen: ReadonlyArray<Lifecycle.Signal<FsWatcher.Change>>) => boolean,
  during: Effect.Effect<void> = Effect.void
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { handle, signals } = yield* FsWatcher.checkpointed({ paths: root, snapshot: { path: snapshot } })
      const seen: Array<Lifecycle.Signal<FsWatcher.Change>> = []
      yield* signals.pipe(
        Stream.runForEach((signal) => {
          seen.push(signal._tag === "Message" ? new Lifecycle.Message({ message: signal.message.item }) : signal)
          return signal._tag === "Message" ? signal.message.ack : Effect.void
        }),
        Effect.forkScoped
      )
      yield* handle.awaitConnection
      yield* during
      yield* Wait.until(() => until(seen), "the changes")
      return seen
    })
  )

const messages = (seen: ReadonlyArray<Lifecycle.Signal<FsWatcher.Change>>) =>
  seen.flatMap((s) => (s._tag === "Message" ? [s.message] : []))

const relative = (root: string, change: FsWatcher.Change) =>
  `${change._tag} ${Path.relative(root, change.path)}${change.reconciled ? " (reconciled)" : ""}`

describe("FsWatcher.checkpointed", () => {
  it.live("a restart reports what changed while nothing watched, after a Gap that says resumed, then live", () =>
    Effect.gen(function* () {
      const root = yield* tempDir
      const state = yield* tempDir
      const snapshot = Path.join(state, "tree.json")
      Fs.writeFileSync(Path.join(root, "a"), "1")
      Fs.writeFileSync(Path.join(root, "b"), "1")
      Fs.mkdirSync(Path.join(root, "d"))
      Fs.writeFileSync(Path.join(root, "d", "kept"), "1")
      // The first run: the initial scan, processed; the snapshot is written at its clean close.
      const first = yield* watchUntil(root, snapshot, (seen) => messages(seen).length >= 5)
      assert.sameMembers(
        messages(first).map((c) => relative(root, c)),
        ["AddDir ", "Add a", "Add b", "AddDir d", "Add d/kept"]
      )
      assert.isTrue(Fs.existsSync(snapshot))
      // While nothing watches.
      Fs.writeFileSync(Path.join(root, "a"), "changed, and longer")
      Fs.rmSync(Path.join(root, "b"))
      Fs.writeFileSync(Path.join(root, "c"), "new")
      Fs.mkdirSync(Path.join(root, "e"))
      Fs.writeFileSync(Path.join(root, "e", "f"), "new")
      yield* Effect.sleep("200 millis")
      const second = yield* watchUntil(
        root,
        snapshot,
        (seen) => messages(seen).some((c) => c.path.endsWith("live")),
        Effect.sync(() => Fs.writeFileSync(Path.join(root, "live"), "now"))
      )
      const reconciled = messages(second).filter((c) => c.reconciled)
      assert.sameMembers(
        reconciled.map((c) => relative(root, c)),
        [
          "Change a (reconciled)",
          "Unlink b (reconciled)",
          "Add c (reconciled)",
          "AddDir e (reconciled)",
          "Add e/f (reconciled)"
        ]
      )
      assert.deepStrictEqual(
        messages(second)
          .filter((c) => !c.reconciled)
          .map((c) => relative(root, c)),
        ["Add live"]
      )
      const tags = second.map((s) => s._tag)
      assert.deepStrictEqual(tags.slice(0, 3), ["Connecting", "Connected", "Gap"])
      const gap = second[2] as Lifecycle.Gap
      assert.strictEqual(gap.delivery, "resumed")
      // Counted from the snapshot's write (the first run's close): at least the 200 ms nothing watched.
      assert.isAtLeast(Duration.toMillis(gap.downtime), 200)
    }).pipe(Effect.scoped)
  )

  it.live("a change not acknowledged is not in the snapshot: the next run reports it again", () =>
    Effect.gen(function* () {
      const root = yield* tempDir
      const state = yield* tempDir
      const snapshot = Path.join(state, "tree.json")
      Fs.writeFileSync(Path.join(root, "done"), "1")
      Fs.writeFileSync(Path.join(root, "failed"), "1")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const { deliveries } = yield* FsWatcher.checkpointed({ paths: root, snapshot: { path: snapshot } })
          // The work on "failed" fails: released, not in the snapshot (nor is anything after it).
          yield* Delivery.process(deliveries.pipe(Stream.take(3)), (change) =>
            change.path.endsWith("failed") ? Effect.fail("no") : Effect.void
          )
        })
      )
      const again = yield* watchUntil(root, snapshot, (seen) => messages(seen).some((c) => c.path.endsWith("failed")))
      assert.include(
        messages(again).map((c) => relative(root, c)),
        "Add failed (reconciled)"
      )
    }).pipe(Effect.scoped)
  )

  it.live("a corrupt snapshot is a Config error naming the file", () =>
    Effect.gen(function* () {
      const root = yield* tempDir
      const state = yield* tempDir
      const snapshot = Path.join(state, "tree.json")
      Fs.writeFileSync(snapshot, "{ torn")
      const exit = yield* Effect.exit(
        Effect.scoped(FsWatcher.checkpointed({ paths: root, snapshot: { path: snapshot } }))
      )
      const error = Expect.connectorError(exit)
      assert.strictEqual(error.reason._tag, "Config")
      assert.include(error.message, snapshot)
    }).pipe(Effect.scoped)
  )
})
