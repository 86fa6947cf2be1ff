/**
 * Runs an example when its file is the one Node was started with (`node src/<example>.ts`), printing its result.
 */
import { fileURLToPath } from "node:url"
import { Effect, type Scope } from "effect"

export const runWhenMain = (url: string, program: Effect.Effect<unknown, unknown, Scope.Scope>): void => {
  if (process.argv[1] !== fileURLToPath(url)) return
  Effect.runPromise(Effect.scoped(program)).then(
    (result) => {
      console.log(JSON.stringify(result, null, 2))
      process.exit(0)
    },
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}
