/**
 * Loading a cluster's own state machine (kv/app-machine.ts) from its module: the module's
 * default export is the factory. The cluster imports it once on the main thread before any
 * node starts, so that a module that does not load fails `createCluster` with an error naming
 * it; each node thread imports it again for its nodes.
 */
import { ErrorCode, RingraftError } from '../base/index.ts';
import type { StateMachineFactory } from '../kv/index.ts';

/** The factory module `href` exports by default; INVALID_ARGUMENT, naming the module, if it does not load or exports no function. */
export async function importFactory(href: string): Promise<StateMachineFactory> {
  let mod: { default?: unknown };
  try {
    mod = (await import(href)) as { default?: unknown };
  } catch (error) {
    throw new RingraftError(ErrorCode.INVALID_ARGUMENT, `stateMachine.module ${href} does not load: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (typeof mod.default !== 'function') {
    throw new RingraftError(ErrorCode.INVALID_ARGUMENT, `stateMachine.module ${href} has no default export that makes a state machine (a function of the options); it exports ${typeof mod.default === 'undefined' ? 'no default' : `a ${typeof mod.default}`}`);
  }
  return mod.default as StateMachineFactory;
}
