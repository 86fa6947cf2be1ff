/**
 * The suite every `Checkpoint.Store` runs against its real backend: what a save leaves for the next process, keys
 * side by side, and a corrupt checkpoint as a typed `Config` error naming the key and the store.
 *
 * @since 0.2.0
 */
import { assert, describe, it } from "@effect/vitest"
import { Checkpoint, type ConnectorError } from "@streamemit/core"
import { Context, Effect, Layer } from "effect"

/**
 * @since 0.2.0
 * @category conformance
 */
export interface Options {
  /** Names the suite. */
  readonly name: string
  /** A fresh store of the same backend for each build (a new process would build the same). */
  readonly layer: Layer.Layer<Checkpoint.Store, ConnectorError.ConnectorError>
  /** A unique key per call: tests share the backend. */
  readonly key: (label: string) => string
  /** Writes something unreadable as the checkpoint of `key`, behind the store's back. */
  readonly corrupt: (key: string) => Effect.Effect<void>
}

/** An instance of the store that lives until the test's Scope closes. */
const storeOf = (layer: Options["layer"]) =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, Checkpoint.Store))

/**
 * @since 0.2.0
 * @category conformance
 */
export const run = (options: Options): void => {
  describe(`checkpoint store: ${options.name}`, () => {
    it.live("a save is there for the next instance; keys side by side; a missing key is no checkpoint", () =>
      Effect.gen(function* () {
        const [a, b] = [options.key("a"), options.key("b")]
        const first = yield* storeOf(options.layer)
        assert.isUndefined(yield* first.load(a))
        yield* first.save(a, { cursor: "1", savedAt: 1_700_000_000_000 })
        yield* first.save(b, { cursor: "id-ü", savedAt: 1_700_000_000_500 })
        yield* first.save(a, { cursor: "2", savedAt: 1_700_000_001_000 })
        const second = yield* storeOf(options.layer)
        assert.deepStrictEqual(yield* second.load(a), { cursor: "2", savedAt: 1_700_000_001_000 })
        assert.deepStrictEqual(yield* second.load(b), { cursor: "id-ü", savedAt: 1_700_000_000_500 })
      }).pipe(Effect.scoped)
    )

    it.live("a corrupt checkpoint is a Config error naming the key and the store, never a start from now", () =>
      Effect.gen(function* () {
        const key = options.key("corrupt")
        const store = yield* storeOf(options.layer)
        yield* options.corrupt(key)
        const error = yield* Effect.flip(store.load(key))
        assert.strictEqual(error.reason._tag, "Config")
        assert.include(error.message, `checkpoint "${key}" in ${store.describe}`)
      }).pipe(Effect.scoped)
    )
  })
}
