/**
 * Loading a cluster's own state machine (kv/app-machine.ts) from its module: the module's
 * default export is the factory. The cluster imports it once on the main thread before any
 * node starts, so that a module that does not load fails `createCluster` with an error naming
 * it; each node thread imports it again for its nodes.
 */
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCode, invalidArgument, RingraftError } from '../base/index.ts';
import type { StateMachine, StateMachineFactory } from '../kv/index.ts';
import type { StateMachineSpec } from './worker-protocol.ts';

/** What a user writes to name a state machine: its module (a URL, or a path from the current directory) and the options for its factory. */
export interface StateMachineInput {
  readonly module: string | URL;
  readonly options?: unknown;
}

/**
 * The module's href and the options, checked (`name` names the setting in messages:
 * `stateMachine`): INVALID_ARGUMENT for an unknown key, a module that is neither a URL nor a
 * non-empty path, or options `structuredClone` cannot copy (they go to every node's thread).
 */
export function resolveStateMachineSpec(spec: unknown, name: string): StateMachineSpec {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw invalidArgument(`${name} must be an object { module, options }`);
  for (const key of Object.keys(spec)) if (key !== 'module' && key !== 'options') throw invalidArgument(`unknown option ${name}.${key}`);
  const { module, options } = spec as { module?: unknown; options?: unknown };
  let href: string;
  if (module instanceof URL) href = module.href;
  else if (typeof module === 'string' && module.length > 0) href = /^(file|data):/.test(module) ? module : pathToFileURL(resolvePath(module)).href;
  else throw invalidArgument(`${name}.module must be a URL or a non-empty path, got ${module === null ? 'null' : typeof module}`);
  try {
    structuredClone(options);
  } catch (error) {
    throw invalidArgument(`${name}.options must be what structuredClone copies (it goes to every node's thread): ${(error as Error).message}`);
  }
  return { module: href, options };
}

/** `made`, if it is a state machine (an object with apply, query, snapshot and restore); INVALID_ARGUMENT naming the module otherwise (an async factory's promise, say). */
export function checkedMachine(made: unknown, href: string): StateMachine {
  const m = made as Partial<Record<keyof StateMachine, unknown>> | null | undefined;
  if (typeof m !== 'object' || m === null || typeof m.apply !== 'function' || typeof m.query !== 'function' || typeof m.snapshot !== 'function' || typeof m.restore !== 'function') {
    const what = made instanceof Promise ? 'a promise (the factory must not be async)' : made === null ? 'null' : typeof made;
    throw new RingraftError(ErrorCode.INVALID_ARGUMENT, `stateMachine.module ${href}: its default export made ${what}, not a state machine { apply, query, snapshot, restore }`);
  }
  return made as StateMachine;
}

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
