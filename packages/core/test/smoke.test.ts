import { it, assert } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { StreamEmit } from "../src/index.ts"

it.effect("smoke", () => Effect.gen(function*() {
  const s = StreamEmit.async<number>((emit) => {
    for (let i = 1; i <= 10; i++) emit.single(i)
    emit.end()
  }, 2)
  const out = yield* Stream.runCollect(s)
  assert.deepStrictEqual(out, [1,2,3,4,5,6,7,8,9,10])
}))
