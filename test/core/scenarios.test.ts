// Proves the Raft core's protocol behaviour scenario by scenario, as data: every script in
// test/core/scenarios/*.txt is run command by command against the ReadyDriver
// (src/sim/ready-driver.ts), and what each command prints must equal the golden output written
// under it. After etcd-io/raft's data-driven interaction tests; the scripts and this runner are
// our own.
//
// A script is a sequence of blocks separated by blank lines. Lines starting with `#` between
// blocks are comments. A block is one command line, then a line `----`, then the expected
// output (never blank; a command that prints nothing prints `ok`):
//
//   propose 1 x
//   ----
//   ok
//
// To write the outputs instead of checking them (after changing a script or the core), run
//
//   UPDATE_GOLDEN=1 npx vitest run test/core/scenarios.test.ts
//
// and read every changed output before committing it: a golden file is only as good as the
// reading it got. A mismatch fails with a diff naming the file and the line of the command.
//
// Commands (node ids are numbers; lists are written (1,2,3)):
//
//   add-nodes N [voters=(..)] [learners=(..)] [seed=S] [any-raft-setting=V]
//       N new nodes with the next free ids. With voters they bootstrap a cluster; without,
//       they start empty and learn their configuration from a leader. Other key=value
//       arguments are Raft settings in kebab case (check-quorum=true, election-timeout-ticks=6).
//       Node i's generator is seeded with S + i (S is 0 unless given).
//   campaign ID            tick ID until its election timer fires (only time starts an election)
//   tick ID.. [count=N]    tick each node N times (default 1)
//   tick-heartbeat ID..    tick each node one heartbeat interval
//   tick-election ID..     tick each node one base election timeout (its randomized timer
//                          may fire on the last tick or not: see timer: in status)
//   process-ready ID..     process one Ready of each node: persist, send, apply, advance
//   deliver-msgs [ID..] [from=ID] [type=MsgApp] [drop=(ID..)]
//       deliver the waiting messages to the nodes listed (all when none is listed); those
//       to the nodes in drop=(..) are dropped instead; from= and type= narrow the selection
//   stabilize [ID..]       until nothing changes: each node processes one Ready, then each
//                          receives what waits for it (messages to other nodes keep waiting)
//   propose ID DATA        propose the entry DATA on node ID
//   propose-conf-change ID CHANGE..   v4 adds voter 4, l4 adds learner 4, r4 removes 4;
//                                     `leave` leaves a joint configuration
//   read-index ID REQUEST [mode=lease]
//   transfer-leadership from=ID to=ID
//   compact ID INDEX       snapshot ID's state machine (its applied entries) at INDEX and
//                          discard the log up to it
//   cut A B | isolate ID | partition (..) (..) | recover
//       cut links; a message on a cut link is lost when it is delivered; recover heals all
//   restart ID             crash and restart ID over its storage
//   status [ID..] | raft-log ID
//   log-level none|info|trace
//       what the run prints: none prints only what status and raft-log are asked for, and
//       errors; info prints Readys, messages and reads answered; trace (the default) adds
//       the core's trace events (votes and why, role changes and why, progress changes,
//       snapshots sent, configuration changes).
//
// What the output means:
//
//   1->2 MsgApp Term:2 Log:2/5 Commit:5 Entries:[2/6 EntryNormal "x"]
//       one message. A log position is term/index throughout: Log:2/5 is the entry before
//       the ones sent, Entries lists term/index and content. A refusal of AppendEntries
//       says Rejected, the index refused and the follower's hint (Hint:term/index); a
//       heartbeat carries the leader's tick when sent (Tick:) and a ReadIndex round (Read:);
//       a snapshot chunk shows Bytes:offset+length/total.
//   dropped (cut): 1->3 ...     a message lost on the way (cut, filter, requested, no-node)
//   Ready MustSync:true SendEarly
//       a Ready, then what it holds: Lead/Role (soft state), HardState, Snapshot, Entries to
//       persist, CommittedEntries to apply, Messages, ReadStates. SendEarly: the Ready
//       allows sending before persisting (the driver never does).
//   1 answers read 7 at index 3  node 1 has applied index 3: read 7 may be answered now
//   2 t1 vote for 1 (t2) granted
//       a trace event: the node, its term, what it decided and why (src/core/trace.ts)
//   1 leader term:2 vote:1 lead:1 commit:5 applied:5 log:[1,6) timer:1 voters:(1,2,3)
//       status: role, hard state, leader, commit and applied indexes, the log held
//       [first, last + 1), ticks until its timer next acts (a campaign, or a leader's
//       heartbeat), the configuration (voters:(1,2,4)&&(1,2,3) is joint); a leader adds a
//       line per follower: progress state, match, next
//   > 1 handling Ready / > 2 receiving messages
//       within stabilize, what each step did, indented under it
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RingraftError } from '../../src/base/index.ts';
import {
  EntryType,
  MessageType,
  decodeConfChange,
  formatTraceEvent,
  type ConfChangeItem,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type RaftNode,
  type Ready,
  type TraceEvent,
} from '../../src/core/index.ts';
import { ReadyDriver, type DriverEvent, type DriverNodeOptions } from '../../src/sim/ready-driver.ts';

const SCENARIOS_DIR = new URL('./scenarios/', import.meta.url);
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const SEPARATOR = '----';

// ─── Scripts ─────────────────────────────────────────────────────────────────────

interface Block {
  /** 1-based line number of the command in its file. */
  readonly line: number;
  readonly command: string;
  readonly expected: readonly string[];
  /** Lines [outputStart, outputEnd) of the file hold the expected output. */
  readonly outputStart: number;
  readonly outputEnd: number;
}

function parseScript(file: string, text: string): { lines: string[]; blocks: Block[] } {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === '' || line.startsWith('#')) {
      i++;
      continue;
    }
    const commandLine = i;
    if (lines[i + 1] !== SEPARATOR) throw new Error(`${file}:${commandLine + 1}: expected '${SEPARATOR}' after the command`);
    const outputStart = i + 2;
    let end = outputStart;
    while (end < lines.length && lines[end]!.trim() !== '') end++;
    blocks.push({ line: commandLine + 1, command: line.trim(), expected: lines.slice(outputStart, end), outputStart, outputEnd: end });
    i = end;
  }
  return { lines, blocks };
}

/** The file with each block's output replaced by `outputs[i]`. */
function rewriteScript(lines: readonly string[], blocks: readonly Block[], outputs: readonly (readonly string[])[]): string {
  const out: string[] = [];
  let at = 0;
  blocks.forEach((b, i) => {
    out.push(...lines.slice(at, b.outputStart), ...outputs[i]!);
    at = b.outputEnd;
  });
  out.push(...lines.slice(at));
  return out.join('\n');
}

// ─── Arguments ───────────────────────────────────────────────────────────────────

interface Args {
  readonly positional: string[];
  readonly named: Map<string, string>;
}

function parseArgs(tokens: readonly string[]): Args {
  const positional: string[] = [];
  const named = new Map<string, string>();
  for (const t of tokens) {
    const eq = t.indexOf('=');
    if (eq > 0) named.set(t.slice(0, eq), t.slice(eq + 1));
    else positional.push(t);
  }
  return { positional, named };
}

function parseId(s: string | undefined): NodeId {
  const n = Number(s);
  if (!(Number.isInteger(n) && n > 0)) throw new Error(`not a node id: ${s}`);
  return n;
}

/** `(1,2,3)` → [1, 2, 3]; `()` → []. */
function parseList(s: string): NodeId[] {
  if (!(s.startsWith('(') && s.endsWith(')'))) throw new Error(`not a list: ${s}`);
  const inner = s.slice(1, -1).trim();
  return inner === '' ? [] : inner.split(',').map((x) => parseId(x.trim()));
}

function parseSettingValue(s: string): boolean | number {
  if (s === 'true') return true;
  if (s === 'false') return false;
  const n = Number(s);
  if (!Number.isFinite(n)) throw new Error(`not a setting value: ${s}`);
  return n;
}

const kebabToCamel = (s: string): string => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

// ─── Rendering ───────────────────────────────────────────────────────────────────

const MESSAGE_TYPE_NAMES = new Map<number, string>(Object.entries(MessageType).map(([name, value]) => [value, `Msg${name}`]));
const MESSAGE_TYPES_BY_NAME = new Map<string, number>(Object.entries(MessageType).map(([name, value]) => [`Msg${name}`, value]));

const textDecoder = new TextDecoder('utf-8', { fatal: true });

function describeData(data: Uint8Array): string {
  try {
    const text = textDecoder.decode(data);
    if (/^[\x20-\x7e]*$/.test(text)) return JSON.stringify(text);
  } catch {
    // Not UTF-8: shown in hex below.
  }
  return `0x${Buffer.from(data).toString('hex')}`;
}

function describeChange(c: ConfChangeItem): string {
  return `${c.op === 'addVoter' ? 'v' : c.op === 'addLearner' ? 'l' : 'r'}${c.nodeId}`;
}

function describeEntry(e: Entry): string {
  if (e.type === EntryType.ConfChange) {
    const cc = decodeConfChange(e.data);
    return `${e.term}/${e.index} EntryConfChange ${cc.changes.length === 0 ? 'leave' : cc.changes.map(describeChange).join(' ')}`;
  }
  return `${e.term}/${e.index} EntryNormal ${describeData(e.data)}`;
}

const list = (ids: readonly NodeId[]): string => `(${ids.join(',')})`;

function describeConf(c: ConfState): string {
  let s = `voters:${list(c.voters)}`;
  if (c.votersOutgoing.length > 0) s += `&&${list(c.votersOutgoing)}`;
  if (c.learners.length > 0) s += ` learners:${list(c.learners)}`;
  if (c.learnersNext.length > 0) s += ` learners-next:${list(c.learnersNext)}`;
  if (c.autoLeave) s += ' auto-leave';
  return s;
}

/** One message on one line: `1->2 MsgApp Term:2 Log:2/5 Commit:5 Entries:[2/6 EntryNormal "x"]`. */
function describeMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${MESSAGE_TYPE_NAMES.get(m.type) ?? `Msg${m.type}`} Term:${m.term}`;
  switch (m.type) {
    case MessageType.PreVote:
    case MessageType.Vote:
      return `${head} Log:${m.logTerm}/${m.index}${m.context === 1 ? ' Transfer' : ''}`;
    case MessageType.PreVoteResp:
    case MessageType.VoteResp:
      return `${head}${m.reject ? ' Rejected' : ''}`;
    case MessageType.App: {
      const entries = m.entries.length === 0 ? '' : ` Entries:[${m.entries.map(describeEntry).join(', ')}]`;
      return `${head} Log:${m.logTerm}/${m.index} Commit:${m.commit}${entries}`;
    }
    case MessageType.AppResp:
      if (!m.reject) return `${head} Index:${m.index}`;
      return `${head} Rejected Index:${m.index} Hint:${m.logTerm}/${m.rejectHint}`;
    case MessageType.Heartbeat:
      return `${head} Commit:${m.commit} Tick:${m.sentTick}${m.context !== 0 ? ` Read:${m.context}` : ''}`;
    case MessageType.HeartbeatResp:
      return `${head} Tick:${m.sentTick}${m.context !== 0 ? ` Read:${m.context}` : ''}`;
    case MessageType.Snap: {
      const c = m.snapshot!;
      return `${head} Snapshot:${c.meta.term}/${c.meta.index} Bytes:${c.offset}+${c.data.length}/${c.totalBytes} ${describeConf(c.meta.conf)}`;
    }
    case MessageType.SnapResp:
      return `${head}${m.reject ? ' Rejected' : ''} Index:${m.index} Offset:${m.rejectHint}`;
    default:
      return head;
  }
}

function describeReady(rd: Ready): string[] {
  const out = [`Ready MustSync:${rd.mustSync}${rd.messagesBeforePersist ? ' SendEarly' : ''}`];
  if (rd.softState !== undefined) out.push(`Lead:${rd.softState.leaderId} Role:${rd.softState.role}`);
  if (rd.hardState !== undefined) out.push(`HardState Term:${rd.hardState.term} Vote:${rd.hardState.vote} Commit:${rd.hardState.commit}`);
  if (rd.snapshot !== undefined) {
    const s = rd.snapshot;
    out.push(`Snapshot ${s.meta.term}/${s.meta.index} ${describeConf(s.meta.conf)} Data:${describeData(s.data)}`);
  }
  const section = (title: string, lines: readonly string[]) => {
    if (lines.length > 0) out.push(`${title}:`, ...lines.map((l) => `  ${l}`));
  };
  section('Entries', rd.entries.map(describeEntry));
  section('CommittedEntries', rd.committedEntries.map(describeEntry));
  section('Messages', rd.messages.map(describeMessage));
  section('ReadStates', rd.readStates.map((r) => `read ${r.requestId} at index ${r.index}`));
  return out;
}

function describeNode(driver: ReadyDriver, id: NodeId): string[] {
  const node = driver.node(id);
  const r: RaftNode = node.raft;
  const out = [
    `${id} ${r.role} term:${r.term} vote:${r.vote} lead:${r.leaderId} commit:${r.log.committed} applied:${node.appliedIndex}` +
      ` log:[${r.log.firstIndex()},${r.log.lastIndex() + 1}) timer:${r.ticksUntilDue()} ${describeConf(r.conf)}`,
  ];
  if (r.role !== 'leader') return out;
  for (const [peer, pr] of r.progress) {
    if (peer === id) continue;
    let s = `  ${peer} ${pr.state} match:${pr.match} next:${pr.next}`;
    if (pr.isLearner) s += ' learner';
    if (pr.state === 'snapshot') s += ` pending-snapshot:${pr.pendingSnapshot}`;
    if (pr.isPaused()) s += ' paused';
    out.push(s);
  }
  if (r.leadTransferee !== 0) out.push(`  transferring to ${r.leadTransferee}`);
  return out;
}

// ─── The environment ─────────────────────────────────────────────────────────────

type LogLevel = 'none' | 'info' | 'trace';
const LOG_LEVELS: readonly LogLevel[] = ['none', 'info', 'trace'];

class ScenarioEnv {
  readonly driver = new ReadyDriver({ seedOf: (id) => this.seedBase + id });
  private seedBase = 0;
  private level: LogLevel = 'trace';
  private out: string[] = [];
  /** Set while stabilizing: lines are grouped under `> N handling Ready` or `> N receiving messages`. */
  private grouped = false;
  private header = '';

  constructor() {
    this.driver.observer = (e) => this.onEvent(e);
  }

  run(command: string): string[] {
    this.out = [];
    const [name, ...rest] = command.split(/\s+/);
    const args = parseArgs(rest);
    try {
      this.handle(name!, args);
    } catch (error) {
      if (!(error instanceof RingraftError)) throw error;
      this.out.push(`error: ${error.code}`);
    } finally {
      this.grouped = false;
      this.header = '';
    }
    const out = this.out.length === 0 ? ['ok'] : this.out;
    for (const line of out) if (line.trim() === '') throw new Error('a command printed a blank line');
    return out;
  }

  private print(line: string, level: LogLevel = 'info'): void {
    if (LOG_LEVELS.indexOf(this.level) < LOG_LEVELS.indexOf(level)) return;
    this.out.push(this.grouped ? `  ${line}` : line);
  }

  /** A query's answer, printed whatever the log level. */
  private answer(line: string): void {
    this.out.push(line);
  }

  private group(header: string, always: boolean): void {
    if (!this.grouped || (!always && this.header === header)) return;
    this.header = header;
    if (this.level !== 'none') this.out.push(header);
  }

  private onEvent(e: DriverEvent): void {
    switch (e.type) {
      case 'ready':
        this.group(`> ${e.id} handling Ready`, true);
        for (const line of describeReady(e.ready)) this.print(line);
        return;
      case 'deliver':
        this.group(`> ${e.message.to} receiving messages`, false);
        this.print(describeMessage(e.message));
        return;
      case 'drop':
        this.group(`> ${e.message.to} receiving messages`, false);
        this.print(`dropped (${e.reason}): ${describeMessage(e.message)}`);
        return;
      case 'read':
        this.print(`${e.id} answers read ${e.read.requestId} at index ${e.read.index}`);
        return;
    }
  }

  private onTrace(e: TraceEvent): void {
    this.print(formatTraceEvent(e), 'trace');
  }

  private ids(args: Args): NodeId[] {
    return args.positional.map(parseId);
  }

  private handle(name: string, args: Args): void {
    const d = this.driver;
    switch (name) {
      case 'add-nodes':
        return this.addNodes(args);
      case 'campaign':
        d.campaign(parseId(args.positional[0]));
        return;
      case 'tick': {
        const count = Number(args.named.get('count') ?? '1');
        for (const id of this.ids(args)) d.tick(id, count);
        return;
      }
      case 'tick-heartbeat':
        for (const id of this.ids(args)) d.tick(id, d.raft(id).heartbeatIntervalTicks);
        return;
      case 'tick-election':
        for (const id of this.ids(args)) d.tick(id, d.raft(id).electionTimeoutTicks);
        return;
      case 'process-ready': {
        const ids = this.ids(args);
        // With several nodes, each one's Ready goes under a header, as in stabilize.
        this.grouped = ids.length > 1;
        for (const id of ids) {
          if (d.processReady(id) !== undefined) continue;
          this.group(`> ${id} handling Ready`, true);
          this.print(this.grouped ? 'no Ready' : `${id} has no Ready`);
        }
        return;
      }
      case 'deliver-msgs':
        return this.deliverMsgs(args);
      case 'stabilize': {
        this.grouped = true;
        const ids = this.ids(args);
        d.stabilize(ids.length > 0 ? ids : undefined);
        return;
      }
      case 'propose':
        d.propose(parseId(args.positional[0]), new TextEncoder().encode(args.positional[1] ?? ''));
        return;
      case 'propose-conf-change':
        return this.proposeConfChange(args);
      case 'read-index': {
        const mode = args.named.get('mode') === 'lease' ? 'lease' : 'safe';
        d.readIndex(parseId(args.positional[0]), Number(args.positional[1]), mode);
        return;
      }
      case 'transfer-leadership':
        d.transferLeadership(parseId(args.named.get('from')), parseId(args.named.get('to')));
        return;
      case 'compact':
        return this.compact(args);
      case 'cut':
        d.cut(parseId(args.positional[0]), parseId(args.positional[1]));
        return;
      case 'isolate':
        for (const id of this.ids(args)) d.isolate(id);
        return;
      case 'partition':
        d.partition(args.positional.map(parseList));
        return;
      case 'recover':
        d.recover();
        return;
      case 'restart':
        for (const id of this.ids(args)) d.restart(id);
        return;
      case 'status': {
        const ids = args.positional.length > 0 ? this.ids(args) : [...d.nodes.keys()];
        for (const id of ids) for (const line of describeNode(d, id)) this.answer(line);
        return;
      }
      case 'raft-log':
        return this.raftLog(parseId(args.positional[0]));
      case 'log-level': {
        const level = args.positional[0] as LogLevel;
        if (!LOG_LEVELS.includes(level)) throw new Error(`unknown log level ${level}`);
        this.level = level;
        return;
      }
      default:
        throw new Error(`unknown command ${name}`);
    }
  }

  private addNodes(args: Args): void {
    const count = Number(args.positional[0]);
    const options: Record<string, unknown> = { trace: (e: TraceEvent) => this.onTrace(e) };
    for (const [key, value] of args.named) {
      if (key === 'voters' || key === 'learners') options[key] = parseList(value);
      else if (key === 'seed') this.seedBase = Number(value);
      else options[kebabToCamel(key)] = parseSettingValue(value);
    }
    const first = Math.max(0, ...this.driver.nodes.keys()) + 1;
    for (let id = first; id < first + count; id++) this.driver.addNode(id, options as DriverNodeOptions);
  }

  private deliverMsgs(args: Args): void {
    const to = new Set(this.ids(args));
    const dropTo = new Set(args.named.has('drop') ? parseList(args.named.get('drop')!) : []);
    const from = args.named.has('from') ? parseId(args.named.get('from')) : undefined;
    const typeName = args.named.get('type');
    const type = typeName === undefined ? undefined : MESSAGE_TYPES_BY_NAME.get(typeName);
    if (typeName !== undefined && type === undefined) throw new Error(`unknown message type ${typeName}`);
    const everyone = to.size === 0 && dropTo.size === 0;
    const which = (m: Message) =>
      (everyone || to.has(m.to) || dropTo.has(m.to)) && (from === undefined || m.from === from) && (type === undefined || m.type === type);
    if (this.driver.deliver(which, (m) => dropTo.has(m.to)) === 0) this.print('no messages');
  }

  private proposeConfChange(args: Args): void {
    const [id, ...specs] = args.positional;
    const changes: ConfChangeItem[] = [];
    for (const spec of specs) {
      if (spec === 'leave') continue;
      const op = { v: 'addVoter', l: 'addLearner', r: 'removeNode' }[spec[0]!] as ConfChangeItem['op'] | undefined;
      if (op === undefined) throw new Error(`not a conf change: ${spec}`);
      changes.push({ op, nodeId: parseId(spec.slice(1)) });
    }
    this.driver.proposeConfChange(parseId(id), { changes });
  }

  private compact(args: Args): void {
    const id = parseId(args.positional[0]);
    const index = Number(args.positional[1]);
    // The state machine's state: the normal entries applied so far, in order.
    const texts = this.driver
      .node(id)
      .applied.filter((e) => e.type === EntryType.Normal && e.data.length > 0 && e.index <= index)
      .map((e) => new TextDecoder().decode(e.data));
    const snap = this.driver.compact(id, index, new TextEncoder().encode(texts.join(',')));
    const raft = this.driver.raft(id);
    this.print(`${id} snapshot ${snap.meta.term}/${snap.meta.index} ${describeConf(snap.meta.conf)}; log now [${raft.log.firstIndex()},${raft.log.lastIndex() + 1})`);
  }

  private raftLog(id: NodeId): void {
    const node = this.driver.node(id);
    const snap = node.storage.snapshot();
    if (snap.meta.index > 0) this.answer(`snapshot ${snap.meta.term}/${snap.meta.index} ${describeConf(snap.meta.conf)}`);
    const entries = node.storage.allEntries();
    if (entries.length === 0 && snap.meta.index === 0) this.answer('log is empty');
    for (const e of entries) this.answer(describeEntry(e));
  }
}

// ─── The test ────────────────────────────────────────────────────────────────────

/** A line diff of two outputs (longest common subsequence): `  ` same, `- ` golden only, `+ ` actual only. */
function diff(expected: readonly string[], actual: readonly string[]): string {
  const n = expected.length;
  const m = actual.length;
  // common[i][j]: the length of the longest common subsequence of expected[i..] and actual[j..].
  const common = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      common[i]![j] = expected[i] === actual[j] ? common[i + 1]![j + 1]! + 1 : Math.max(common[i + 1]![j]!, common[i]![j + 1]!);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && expected[i] === actual[j]) {
      out.push(`  ${expected[i++]}`);
      j++;
    } else if (i < n && (j === m || common[i + 1]![j]! >= common[i]![j + 1]!)) {
      out.push(`- ${expected[i++]}`);
    } else {
      out.push(`+ ${actual[j++]}`);
    }
  }
  return out.join('\n');
}

const files = readdirSync(SCENARIOS_DIR)
  .filter((f) => f.endsWith('.txt'))
  .sort();

describe('protocol scenarios (test/core/scenarios/*.txt)', () => {
  it('finds the scenarios', () => {
    expect(files.length).toBeGreaterThanOrEqual(12);
  });

  for (const file of files) {
    it(file, () => {
      const url = new URL(file, SCENARIOS_DIR);
      const text = readFileSync(url, 'utf8');
      const { lines, blocks } = parseScript(file, text);
      const env = new ScenarioEnv();
      const outputs: string[][] = [];
      const mismatches: string[] = [];
      for (const b of blocks) {
        let actual: string[];
        try {
          actual = env.run(b.command);
        } catch (error) {
          throw new Error(`test/core/scenarios/${file}:${b.line}: ${b.command}: ${(error as Error).message}`, { cause: error });
        }
        outputs.push(actual);
        if (actual.join('\n') !== b.expected.join('\n')) {
          mismatches.push(`test/core/scenarios/${file}:${b.line}: ${b.command}\n${diff(b.expected, actual)}`);
        }
      }
      if (UPDATE) {
        const updated = rewriteScript(lines, blocks, outputs);
        if (updated !== text) writeFileSync(url, updated);
        return;
      }
      if (mismatches.length > 0) {
        expect.fail(`${mismatches.length} command(s) printed other than their golden output (- golden, + actual):\n\n${mismatches.join('\n\n')}`);
      }
    });
  }
});
