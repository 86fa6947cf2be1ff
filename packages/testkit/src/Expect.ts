/**
 * Assertions about connector outcomes, shared by connector test suites.
 *
 * @since 0.1.0
 */
import { assert } from "@effect/vitest"
import type { ConnectorError } from "@streamemit/core"
import * as Exit from "effect/Exit"

/**
 * The typed `ConnectorError` an exit failed with; fails the test when the exit succeeded or died.
 *
 * @since 0.1.0
 * @category assertions
 */
export const connectorError = (
  exit: Exit.Exit<unknown, ConnectorError.ConnectorError>
): ConnectorError.ConnectorError => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  const failure = (exit as Exit.Failure<unknown, ConnectorError.ConnectorError>).cause.reasons.find(
    (reason) => reason._tag === "Fail"
  ) as { readonly error: ConnectorError.ConnectorError } | undefined
  assert.isDefined(failure, "expected a typed failure, not a defect or an interruption")
  return failure!.error
}
