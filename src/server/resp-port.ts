/**
 * The RESP port (`--listen-resp`): a node that speaks the Redis protocol, so that redis-cli,
 * redis-benchmark and every Redis client read and write the replicated store.
 *
 * ```
 *  Redis client ──RESP──► RespPort ──KvClient──► this node's client port ──► the node (and its leader)
 *               ◄─replies in order─┘  (redis / redisRead: kv/redis.ts runs the commands in the state machine)
 * ```
 *
 * **Commands.** The store's (kv/redis.ts: GET, SET, INCR, APPEND, MGET, SCAN, ...) go through
 * Raft: a write is one log entry, applied exactly once through the client's session; a read
 * is linearizable unless the connection asked otherwise (`RINGRAFT READ lease|stale`). MULTI
 * queues the store's commands and EXEC sends them as one entry, applied together. The
 * connection's own (PING, ECHO, HELLO, AUTH, SELECT 0, CLIENT, INFO, COMMAND, CONFIG GET,
 * QUIT, RESET) are answered here. A node that is not the leader forwards what needs the
 * leader (the client port does); with no leader the reply is `-CLUSTERDOWN`, and the client
 * may retry.
 *
 * **Order.** A connection's commands take effect in the order it sent them, as on Redis: its
 * store commands go out in groups, one group at a time, each after the one before has been
 * answered; a run of writes is one log entry (so a pipeline of writes costs one proposal), a
 * run of reads one read of one state. Replies leave in the order of the commands.
 *
 * **Bounds.** A connection stops reading while RESP_PIPELINE_MAX commands wait for theirs, or
 * while more than RESP_OUTPUT_BYTES_MAX bytes of replies wait for it to read them; one that
 * reads none of them for RESP_OUTPUT_STALL_MS, or whose unread replies pass
 * RESP_OUTPUT_BYTES_HARD_MAX, is closed. A request past the parser's
 * bounds (resp/parser.ts: a bulk string over KV_VALUE_BYTES_MAX, a line over 64 KiB, a
 * command over RESP_COMMAND_BYTES_MAX) is answered `-ERR Protocol error: ...` and the
 * connection closed: the node is untouched.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { ErrorCode, RingraftError } from '../base/index.ts';
import type { KvClient } from '../cluster/index.ts';
import { checkRedisCommand, KV_REDIS_COMMANDS_MAX, KV_REQUEST_BYTES_MAX, KV_VALUE_BYTES_MAX, REDIS_STORE_COMMANDS, redisCommandName, redisWriteReplyIsSmall } from '../kv/index.ts';
import { RESP_LINE_BYTES_MAX, resp2ToResp3, RespRequestParser, RespWriter, splitReplies, type RespCommand } from '../resp/index.ts';
import type { ReadConsistency } from '../runtime/index.ts';
import { formatHostPort, type HostPort } from './host-port.ts';
import type { Logger } from './log.ts';

/** Commands read and not yet answered, per connection, past which it stops reading. */
export const RESP_PIPELINE_MAX = 1024;
/** Bytes of replies a connection has not read, past which it stops reading requests. */
export const RESP_OUTPUT_BYTES_MAX = 8 << 20;
/** Bytes of replies a connection has not read, past which it is closed (Redis's client-output-buffer-limit). */
export const RESP_OUTPUT_BYTES_HARD_MAX = 64 << 20;
/** A connection that reads none of its replies for this long, while it has RESP_OUTPUT_BYTES_MAX of them waiting, is closed. */
export const RESP_OUTPUT_STALL_MS = 5_000;
/** Most bytes one command takes on the wire: a write request's worth, with RESP's framing. */
export const RESP_COMMAND_BYTES_MAX = 4 << 20;
/** Elements of one command at most (an MSET of 8,191 pairs): each costs a view, past its bytes on the wire. */
export const RESP_ARGS_MAX = 16_384;
/** Connections at most; past them a new one is told so and closed. */
export const RESP_CONNECTIONS_MAX = 10_000;

/** The version a client is told (HELLO, INFO): the Redis whose commands these behave as. */
const REDIS_VERSION = '7.0.0';
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const EMPTY = new Uint8Array(0);

/** What the port needs of its node server. */
export interface RespPortHost {
  readonly nodeId: number;
  readonly log: Logger;
  /** The client all commands go through: this node's own. */
  readonly client: KvClient;
  /** The node's role and the leader it knows, for INFO. */
  role(): Promise<{ readonly role: string; readonly leaderId: number; readonly term: number }>;
  /** Whether the server is shutting down: new commands get `-CLUSTERDOWN`. */
  isDraining(): boolean;
  /** The leader as this node last heard; 0: none known. */
  leaderId(): number;
}

export interface RespPortOptions {
  readonly listen: HostPort;
  readonly password: string | undefined;
  /** Every node's RESP address: given, a node that does not lead answers `-MOVED` for what needs the leader instead of forwarding it. */
  readonly moved: ReadonlyMap<number, HostPort> | undefined;
}

/** The counters the port keeps (metrics). */
export interface RespPortStats {
  readonly connections: number;
  readonly commands: number;
  readonly protocolErrors: number;
  readonly stalledClosed: number;
}

export class RespPort {
  private readonly connections = new Set<RespConnection>();
  private nextId = 1;
  commands = 0;
  protocolErrors = 0;
  /** Connections closed because they read none of their backed-up replies. */
  stalledClosed = 0;

  private constructor(
    private readonly server: Server,
    readonly address: HostPort,
    readonly host: RespPortHost,
    readonly password: string | undefined,
    readonly moved: ReadonlyMap<number, HostPort> | undefined,
  ) {}

  /** Listens on `options.listen`; rejects with CONNECTION_FAILED if it cannot bind. */
  static async start(options: RespPortOptions, host: RespPortHost): Promise<RespPort> {
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) => reject(new RingraftError(ErrorCode.CONNECTION_FAILED, `the RESP port cannot listen on ${formatHostPort(options.listen)}: ${error.message}`, { cause: error })));
      server.listen(options.listen.port, options.listen.host, () => resolve());
    });
    const bound = server.address();
    const address = typeof bound === 'object' && bound !== null ? { host: options.listen.host, port: bound.port } : options.listen;
    const port = new RespPort(server, address, host, options.password, options.moved);
    server.on('connection', (socket) => port.accept(socket));
    server.on('error', (error) => host.log.log('error', 'resp', `the RESP port failed: ${error.message}`));
    host.log.log('info', 'listening', `RESP port on ${formatHostPort(address)}`, { address: formatHostPort(address) });
    return port;
  }

  stats(): RespPortStats {
    return { connections: this.connections.size, commands: this.commands, protocolErrors: this.protocolErrors, stalledClosed: this.stalledClosed };
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    for (const c of this.connections) c.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    if (this.connections.size >= RESP_CONNECTIONS_MAX) {
      socket.end('-ERR max number of clients reached\r\n');
      return;
    }
    const conn = new RespConnection(this, socket, this.nextId++);
    this.connections.add(conn);
    socket.on('close', () => this.connections.delete(conn));
  }
}

/** A reply not yet written: its bytes once the command is answered. */
interface Slot {
  bytes: Uint8Array | undefined;
  /** Close the connection once this reply is written (QUIT, a protocol error). */
  closeAfter: boolean;
}

/** A store command waiting for its turn: a write, a read (at the consistency the connection had when it came), or an EXEC's commands. */
interface Queued {
  readonly kind: 'write' | 'read' | 'exec';
  readonly commands: RespCommand[];
  readonly consistency: ReadConsistency;
  /** The protocol the connection spoke when the command came: its reply is written in it. */
  readonly protocol: 2 | 3;
  readonly slot: Slot;
  readonly bytes: number;
}

/** Most commands in one group (one log entry, or one read). */
const GROUP_COMMANDS_MAX = 256;
/** Most bytes of commands in one group: a write request's worth, with room for its framing. */
const GROUP_BYTES_MAX = 1 << 20;

class RespConnection {
  private readonly parser = new RespRequestParser({ bulkBytesMax: KV_VALUE_BYTES_MAX, argsMax: RESP_ARGS_MAX, lineBytesMax: RESP_LINE_BYTES_MAX, commandBytesMax: RESP_COMMAND_BYTES_MAX });
  private readonly slots: Slot[] = [];
  private protocol: 2 | 3 = 2;
  private authenticated: boolean;
  private name: Uint8Array | undefined;
  private consistency: ReadConsistency = 'linearizable';
  /** The commands of a MULTI, and whether one of them was refused (EXEC then aborts). */
  private multi: { commands: RespCommand[]; failed: boolean; bytes: number } | undefined;
  /** Whether this connection has written since its stale reads last caught up (see send). */
  private wroteSinceSync = false;
  private closing = false;
  private paused = false;
  /** Store commands not yet sent, and whether a group of them is out. */
  private readonly queued: Queued[] = [];
  private sending = false;
  /** The timer that cuts off a client that reads none of its backed-up replies (watchStall). */
  private stall: { readonly timer: NodeJS.Timeout } | undefined;

  constructor(
    private readonly port: RespPort,
    private readonly socket: Socket,
    readonly id: number,
  ) {
    this.authenticated = port.password === undefined;
    this.parser.authenticated(this.authenticated);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      this.send();
      this.maybeResume();
    });
    socket.on('error', () => socket.destroy());
  }

  destroy(): void {
    this.closing = true;
    if (this.stall !== undefined) clearTimeout(this.stall.timer);
    this.stall = undefined;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    // Unauthenticated, the parser hands out one command at a time (an AUTH lifts its bounds).
    for (let commands = this.parser.push(chunk); commands.length > 0 && !this.closing; commands = this.parser.push(EMPTY)) {
      for (const command of commands) {
        if (this.closing) break;
        this.port.commands++;
        this.run(command);
      }
    }
    const failure = this.parser.failure;
    if (failure !== undefined && !this.closing) {
      this.port.protocolErrors++;
      this.closing = true;
      this.socket.pause();
      // The replies to the commands before it first, then the error, then the end.
      this.slots.push({ bytes: this.writer().error(`ERR ${failure.message}`).take(), closeAfter: true });
    }
    this.send();
    this.flush();
    this.maybePause();
  }

  private writer(): RespWriter {
    return new RespWriter(this.protocol, 256);
  }

  /** A slot answered at once. */
  private answer(write: (w: RespWriter) => unknown, closeAfter = false): void {
    const w = this.writer();
    write(w);
    this.slots.push({ bytes: w.take(), closeAfter });
  }

  /** RESP2 bytes from the store, as a connection that spoke `protocol` reads them. */
  private inProtocol(protocol: 2 | 3, resp2: Uint8Array): Uint8Array {
    return protocol === 3 ? resp2ToResp3(resp2) : resp2;
  }

  /** Whether a queued command may share its group: not an EXEC, nor a write whose reply holds a value (it gets the entry's whole reply bound). */
  private shares(q: Queued): boolean {
    return q.kind === 'read' || (q.kind === 'write' && redisWriteReplyIsSmall(q.commands[0]!));
  }

  /** A slot answered when `reply` settles: RESP2 bytes, or an error (for INFO: not a store command, so not queued). */
  private later(reply: Promise<Uint8Array>): void {
    const slot: Slot = { bytes: undefined, closeAfter: false };
    this.slots.push(slot);
    const protocol = this.protocol;
    reply
      .then(
        (bytes) => {
          slot.bytes = this.inProtocol(protocol, bytes);
        },
        (error: unknown) => {
          slot.bytes = new RespWriter(protocol, 256).error(errorText(error, false)).take();
        },
      )
      .finally(() => {
        this.flush();
        this.maybeResume();
      });
  }

  private run(command: RespCommand): void {
    const name = redisCommandName(command)!;
    if (!this.authenticated && name !== 'auth' && name !== 'hello' && name !== 'quit' && name !== 'reset') {
      this.answer((w) => w.error('NOAUTH Authentication required.'));
      return;
    }
    if (this.multi !== undefined && name !== 'exec' && name !== 'discard' && name !== 'multi' && name !== 'quit' && name !== 'reset') {
      this.queue(command, name);
      return;
    }
    switch (name) {
      case 'ping':
        if (command.length > 2) return this.answer((w) => w.error("ERR wrong number of arguments for 'ping' command"));
        return this.answer((w) => (command.length === 2 ? w.bulk(command[1]) : w.simple('PONG')));
      case 'echo':
        if (command.length !== 2) return this.answer((w) => w.error("ERR wrong number of arguments for 'echo' command"));
        return this.answer((w) => w.bulk(command[1]));
      case 'hello':
        return this.hello(command);
      case 'auth':
        return this.auth(command.slice(1));
      case 'select': {
        if (command.length !== 2) return this.answer((w) => w.error("ERR wrong number of arguments for 'select' command"));
        const db = decoder.decode(command[1]);
        return this.answer((w) => (db === '0' ? w.simple('OK') : /^-?\d+$/.test(db) ? w.error('ERR DB index is out of range') : w.error('ERR value is not an integer or out of range')));
      }
      case 'client':
        return this.client(command);
      case 'info':
        return this.later(this.info());
      case 'command':
        return this.commandInfo(command);
      case 'config':
        return this.config(command);
      case 'quit':
        // Nothing after it runs: what came with it in the same read is dropped, as Redis does.
        this.closing = true;
        this.socket.pause();
        return this.answer((w) => w.simple('OK'), true);
      case 'reset':
        this.multi = undefined;
        this.protocol = 2;
        this.consistency = 'linearizable';
        this.name = undefined;
        this.authenticated = this.port.password === undefined;
        this.parser.authenticated(this.authenticated);
        return this.answer((w) => w.simple('RESET'));
      case 'multi':
        if (this.multi !== undefined) return this.answer((w) => w.error('ERR MULTI calls can not be nested'));
        this.multi = { commands: [], failed: false, bytes: 0 };
        return this.answer((w) => w.simple('OK'));
      case 'exec':
        return this.exec();
      case 'discard':
        if (this.multi === undefined) return this.answer((w) => w.error('ERR DISCARD without MULTI'));
        this.multi = undefined;
        return this.answer((w) => w.simple('OK'));
      case 'watch':
      case 'unwatch':
        return this.answer((w) => w.error(`ERR ${name.toUpperCase()} is not supported: the commands of a MULTI apply together in one log entry`));
      case 'ringraft':
        return this.ringraft(command);
    }
    const checked = checkRedisCommand(command);
    if ('error' in checked) return this.answer((w) => w.error(checked.error));
    if (this.port.host.isDraining()) return this.answer((w) => w.error('CLUSTERDOWN this node is shutting down: ask another'));
    if (this.redirected(checked.kind === 'write' || this.consistency !== 'stale')) return;
    this.enqueue(checked.kind, [command]);
  }

  /**
   * With `moved` (the port's redirect mode), what needs the leader (`needsLeader`), asked of a
   * node that does not lead, is answered `-MOVED 0 HOST:PORT` with the leader's RESP address
   * (`-CLUSTERDOWN` while none is known): true. Otherwise false, and it is served here.
   */
  private redirected(needsLeader: boolean): boolean {
    const moved = this.port.moved;
    if (moved === undefined || !needsLeader) return false;
    const leader = this.port.host.leaderId();
    if (leader === this.port.host.nodeId) return false;
    const address = moved.get(leader);
    if (address === undefined) this.answer((w) => w.error(leader === 0 ? 'CLUSTERDOWN no leader is known: try again' : `CLUSTERDOWN the leader, node ${leader}, has no RESP address in --resp-moved`));
    else this.answer((w) => w.error(`MOVED 0 ${formatHostPort(address)}`));
    return true;
  }

  /** Queues store commands behind the ones before them, with a slot for their reply. */
  private enqueue(kind: Queued['kind'], commands: RespCommand[]): void {
    const slot: Slot = { bytes: undefined, closeAfter: false };
    this.slots.push(slot);
    let bytes = 0;
    for (const c of commands) for (const word of c) bytes += word.length + 16;
    this.queued.push({ kind, commands, consistency: this.consistency, protocol: this.protocol, slot, bytes });
  }

  /**
   * Sends the next group of queued store commands, if none is out: the longest run of the
   * same kind (reads at one consistency) within the group's bounds, an EXEC alone. Its reply
   * holds each command's, one after another: it goes in the first command's slot, and the
   * others' are empty.
   */
  private send(): void {
    // No more answers while the client has not read those it has: they would only wait here.
    if (this.sending || this.queued.length === 0 || this.socket.writableLength > RESP_OUTPUT_BYTES_MAX) return;
    const first = this.queued[0]!;
    let n = 1;
    let bytes = first.bytes;
    if (this.shares(first)) {
      while (n < this.queued.length && n < GROUP_COMMANDS_MAX) {
        const next = this.queued[n]!;
        if (next.kind !== first.kind || !this.shares(next) || next.consistency !== first.consistency || bytes + next.bytes > GROUP_BYTES_MAX) break;
        bytes += next.bytes;
        n++;
      }
    }
    const group = this.queued.splice(0, n);
    const client = this.port.host.client;
    const commands = group.flatMap((q) => q.commands);
    // A stale read after this connection's own write asks this node to catch up with the
    // leader first (a follower read), so that the connection sees what it wrote.
    const sync = first.kind === 'read' && first.consistency === 'stale' && this.wroteSinceSync;
    const reply = first.kind === 'read' ? client.redisRead(commands, sync ? { readFrom: 'any' } : { consistency: first.consistency }) : client.redis(commands, first.kind === 'exec');
    this.sending = true;
    reply
      .then(
        (encoded) => {
          if (first.kind === 'read') {
            if (sync) this.wroteSinceSync = false;
          } else {
            this.wroteSinceSync = true;
          }
          if (first.kind === 'exec') {
            first.slot.bytes = this.inProtocol(first.protocol, encoded);
            return;
          }
          // One reply per command, each into its own slot: a connection command's reply may sit between them.
          const replies = splitReplies(encoded);
          // Reads answer as many as their replies' bound holds: the rest go again, first.
          if (replies.length < group.length) this.queued.unshift(...group.splice(replies.length));
          for (let i = 0; i < group.length; i++) group[i]!.slot.bytes = this.inProtocol(group[i]!.protocol, replies[i]!);
        },
        (error: unknown) => {
          // A write's outcome is unknown (it may have applied): never after this as if it had not.
          if (first.kind !== 'read') this.wroteSinceSync = true;
          const text = errorText(error, first.kind !== 'read');
          for (const q of group) q.slot.bytes = new RespWriter(q.protocol, 256).error(text).take();
        },
      )
      .finally(() => {
        this.sending = false;
        this.send();
        this.flush();
        this.maybeResume();
      });
  }

  /**
   * A command inside MULTI: queued if the store runs it, else refused (and EXEC will abort):
   * KEYS and SCAN too (every replica would run them as it applies the entry), and what would
   * take the transaction past one log entry's bounds (KV_REDIS_COMMANDS_MAX commands,
   * KV_REQUEST_BYTES_MAX bytes), which is then not kept.
   */
  private queue(command: RespCommand, name: string): void {
    const multi = this.multi!;
    const checked = checkRedisCommand(command);
    let refusal: string | undefined;
    if ('error' in checked) refusal = REDIS_STORE_COMMANDS.has(name) || !CONNECTION_COMMANDS.has(name) ? checked.error : `ERR ${name.toUpperCase()} inside MULTI is not supported`;
    else if (name === 'keys' || name === 'scan') refusal = `ERR ${name.toUpperCase()} inside MULTI is not supported: every replica would run it as it applies the transaction`;
    else {
      for (const word of command) multi.bytes += word.length + 16;
      if (multi.commands.length >= KV_REDIS_COMMANDS_MAX || multi.bytes > KV_REQUEST_BYTES_MAX) refusal = `ERR a MULTI holds at most ${KV_REDIS_COMMANDS_MAX} commands and ${KV_REQUEST_BYTES_MAX} bytes`;
    }
    if (refusal !== undefined) {
      multi.failed = true;
      // A failed transaction keeps nothing more: EXEC only aborts it.
      multi.commands.length = 0;
      return this.answer((w) => w.error(refusal));
    }
    if (!multi.failed) multi.commands.push(command);
    this.answer((w) => w.simple('QUEUED'));
  }

  private exec(): void {
    const multi = this.multi;
    if (multi === undefined) return this.answer((w) => w.error('ERR EXEC without MULTI'));
    this.multi = undefined;
    if (multi.failed) return this.answer((w) => w.error('EXECABORT Transaction discarded because of previous errors.'));
    if (multi.commands.length === 0) return this.answer((w) => w.array(0));
    if (this.redirected(true)) return;
    this.enqueue('exec', multi.commands);
  }

  private hello(command: RespCommand): void {
    let protocol = this.protocol;
    if (command.length >= 2) {
      const v = decoder.decode(command[1]);
      if (v !== '2' && v !== '3') return this.answer((w) => w.error('NOPROTO unsupported protocol version'));
      protocol = v === '3' ? 3 : 2;
    }
    for (let i = 2; i < command.length; i++) {
      const option = decoder.decode(command[i]).toLowerCase();
      if (option === 'auth' && i + 2 < command.length) {
        if (!this.checkPassword(command.slice(i + 1, i + 3))) return this.answer((w) => w.error('WRONGPASS invalid username-password pair or user is disabled.'));
        i += 2;
      } else if (option === 'setname' && i + 1 < command.length) {
        this.name = command[++i];
      } else {
        return this.answer((w) => w.error(`ERR Syntax error in HELLO option '${option}'`));
      }
    }
    if (!this.authenticated) return this.answer((w) => w.error('NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time'));
    this.protocol = protocol;
    this.answer((w) => {
      w.map(7);
      w.bulk('server').bulk('redis');
      w.bulk('version').bulk(REDIS_VERSION);
      w.bulk('proto').integer(protocol);
      w.bulk('id').integer(this.id);
      w.bulk('mode').bulk('standalone');
      w.bulk('role').bulk('master');
      w.bulk('modules').array(0);
    });
  }

  private auth(args: RespCommand): void {
    if (args.length < 1 || args.length > 2) return this.answer((w) => w.error("ERR wrong number of arguments for 'auth' command"));
    if (this.port.password === undefined && args.length === 1) return this.answer((w) => w.error('ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?'));
    if (!this.checkPassword(args.length === 2 ? args : [encoder.encode('default'), args[0]!])) return this.answer((w) => w.error('WRONGPASS invalid username-password pair or user is disabled.'));
    this.answer((w) => w.simple('OK'));
  }

  /**
   * Whether [user, password] is the default user with the port's password, or any password
   * where none is set (Redis's default user then takes any); if so, the connection is
   * authenticated.
   */
  private checkPassword([user, password]: RespCommand): boolean {
    const expected = this.port.password;
    const ok = decoder.decode(user) === 'default' && (expected === undefined || decoder.decode(password) === expected);
    if (ok) {
      this.authenticated = true;
      this.parser.authenticated(true);
    }
    return ok;
  }

  private client(command: RespCommand): void {
    const sub = command[1] === undefined ? '' : decoder.decode(command[1]).toLowerCase();
    switch (sub) {
      case 'setname':
        if (command.length !== 3) return this.answer((w) => w.error("ERR wrong number of arguments for 'client|setname' command"));
        this.name = command[2]!.length === 0 ? undefined : command[2];
        return this.answer((w) => w.simple('OK'));
      case 'getname':
        return this.answer((w) => w.bulk(this.name));
      case 'setinfo':
        return this.answer((w) => w.simple('OK'));
      case 'id':
        return this.answer((w) => w.integer(this.id));
      case 'info':
        return this.answer((w) => w.bulk(`id=${this.id} addr=${this.socket.remoteAddress}:${this.socket.remotePort} name=${this.name === undefined ? '' : decoder.decode(this.name)} db=0 resp=${this.protocol}\n`));
      default:
        return this.answer((w) => w.error(`ERR unknown subcommand '${sub}'. Try CLIENT HELP.`));
    }
  }

  private async info(): Promise<Uint8Array> {
    const host = this.port.host;
    const keys = await host.client.redisRead([[encoder.encode('DBSIZE')]], { consistency: 'stale' });
    const count = Number(decoder.decode(keys).slice(1).trim());
    const role = await host.role();
    const text = [
      '# Server',
      `redis_version:${REDIS_VERSION}`,
      'redis_mode:standalone',
      'server:ringraft',
      `process_id:${process.pid}`,
      `tcp_port:${this.port.address.port}`,
      '',
      '# Clients',
      `connected_clients:${this.port.stats().connections}`,
      '',
      '# Persistence',
      'loading:0',
      '',
      '# Replication',
      // Every node takes writes (a follower forwards them), as a master does.
      'role:master',
      '',
      '# Ringraft',
      `raft_node_id:${host.nodeId}`,
      `raft_role:${role.role}`,
      `raft_leader_id:${role.leaderId}`,
      `raft_term:${role.term}`,
      `read_consistency:${this.consistency}`,
      '',
      '# Keyspace',
      `db0:keys=${count},expires=0,avg_ttl=0`,
      '',
    ].join('\r\n');
    const w = new RespWriter(2, text.length + 16);
    return w.bulk(text).take();
  }

  private commandInfo(command: RespCommand): void {
    const sub = command[1] === undefined ? '' : decoder.decode(command[1]).toLowerCase();
    const all = [...REDIS_STORE_COMMANDS.entries()];
    if (sub === 'count') return this.answer((w) => w.integer(all.length + CONNECTION_COMMANDS.size));
    if (sub === 'docs') return this.answer((w) => w.map(0));
    if (sub === 'list') {
      return this.answer((w) => {
        w.array(all.length + CONNECTION_COMMANDS.size);
        for (const [name] of all) w.bulk(name);
        for (const [name] of CONNECTION_COMMANDS) w.bulk(name);
      });
    }
    if (sub !== '' && sub !== 'info') return this.answer((w) => w.error(`ERR unknown subcommand '${sub}'. Try COMMAND HELP.`));
    const asked = sub === 'info' ? command.slice(2).map((c) => decoder.decode(c).toLowerCase()) : undefined;
    this.answer((w) => {
      const entries = all.filter(([name]) => asked === undefined || asked.includes(name));
      w.array(entries.length);
      for (const [name, spec] of entries) {
        w.array(6).bulk(name).integer(spec.arity);
        w.array(1).simple(spec.kind === 'write' ? 'write' : 'readonly');
        const keyed = name !== 'dbsize' && name !== 'keys' && name !== 'scan';
        w.integer(keyed ? 1 : 0).integer(keyed ? (spec.arity < 0 && name !== 'set' ? -1 : 1) : 0).integer(keyed ? (name === 'mset' || name === 'msetnx' ? 2 : 1) : 0);
      }
    });
  }

  /** CONFIG GET: the parameters redis-benchmark and clients ask for, as ringraft has them; CONFIG SET and the rest are refused. */
  private config(command: RespCommand): void {
    const sub = command[1] === undefined ? '' : decoder.decode(command[1]).toLowerCase();
    if (sub !== 'get') return this.answer((w) => w.error(`ERR CONFIG ${sub.toUpperCase()} is not supported: ringraft is configured with ringraft serve's settings`));
    const values: Record<string, string> = { save: '', appendonly: 'yes', appendfsync: 'always', databases: '1', maxmemory: '0', 'proto-max-bulk-len': String(KV_VALUE_BYTES_MAX) };
    const patterns = command.slice(2).map((p) => decoder.decode(p).toLowerCase());
    const found = Object.entries(values).filter(([key]) => patterns.some((p) => globText(p, key)));
    this.answer((w) => {
      w.map(found.length);
      for (const [key, value] of found) w.bulk(key).bulk(value);
    });
  }

  private ringraft(command: RespCommand): void {
    const sub = command[1] === undefined ? '' : decoder.decode(command[1]).toLowerCase();
    if (sub === 'read' && command.length === 3) {
      const c = decoder.decode(command[2]).toLowerCase();
      if (c !== 'linearizable' && c !== 'lease' && c !== 'stale') return this.answer((w) => w.error('ERR RINGRAFT READ takes linearizable, lease or stale'));
      this.consistency = c;
      return this.answer((w) => w.simple('OK'));
    }
    this.answer((w) => w.error('ERR RINGRAFT READ linearizable|lease|stale sets how this connection reads'));
  }

  /** Writes the replies answered, in order, up to the first still waiting; closes after one that says so. */
  private flush(): void {
    let out: Uint8Array[] | undefined;
    let close = false;
    while (this.slots.length > 0 && this.slots[0]!.bytes !== undefined) {
      const slot = this.slots.shift()!;
      (out ??= []).push(slot.bytes!);
      if (slot.closeAfter) {
        close = true;
        this.slots.length = 0;
        break;
      }
    }
    if (out !== undefined && !this.socket.destroyed) {
      if (out.length === 1) this.socket.write(out[0]!);
      else this.socket.write(Buffer.concat(out));
    }
    if (close) {
      this.closing = true;
      this.socket.end();
      return;
    }
    if (this.socket.writableLength > RESP_OUTPUT_BYTES_HARD_MAX) {
      this.port.host.log.log('warn', 'resp', `RESP connection ${this.id}: ${this.socket.writableLength} bytes of replies unread; closed`);
      this.destroy();
    }
  }

  private maybePause(): void {
    if (this.paused || this.closing) return;
    if (this.slots.length >= RESP_PIPELINE_MAX || this.socket.writableLength > RESP_OUTPUT_BYTES_MAX) {
      this.paused = true;
      this.socket.pause();
    }
    this.watchStall();
  }

  private maybeResume(): void {
    this.watchStall();
    if (!this.paused || this.closing) return;
    if (this.slots.length < RESP_PIPELINE_MAX / 2 && this.socket.writableLength <= RESP_OUTPUT_BYTES_MAX) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /** Bytes of replies the kernel has taken (bytesWritten counts those still buffered here too). */
  private bytesSent(): number {
    return this.socket.bytesWritten - this.socket.writableLength;
  }

  /**
   * While replies back up past RESP_OUTPUT_BYTES_MAX, a timer: a client that has not read any
   * of them when it fires (the same bytes still wait) is cut off, its memory given back.
   */
  private watchStall(): void {
    const backedUp = this.socket.writableLength > RESP_OUTPUT_BYTES_MAX;
    if (!backedUp || this.closing) {
      if (this.stall !== undefined) clearTimeout(this.stall.timer);
      this.stall = undefined;
      return;
    }
    if (this.stall !== undefined) return;
    const written = this.bytesSent();
    const timer = setTimeout(() => {
      this.stall = undefined;
      if (this.bytesSent() === written && this.socket.writableLength > RESP_OUTPUT_BYTES_MAX) {
        this.port.host.log.log('warn', 'resp', `RESP connection ${this.id} read none of its ${this.socket.writableLength} bytes of replies in ${RESP_OUTPUT_STALL_MS} ms; closed`);
        this.port.stalledClosed++;
        this.destroy();
      } else {
        this.watchStall();
      }
    }, RESP_OUTPUT_STALL_MS);
    timer.unref();
    this.stall = { timer };
  }
}

/** The commands the port answers itself. */
const CONNECTION_COMMANDS = new Map(
  ['ping', 'echo', 'hello', 'auth', 'select', 'client', 'info', 'command', 'config', 'quit', 'reset', 'multi', 'exec', 'discard', 'ringraft'].map((n) => [n, true]),
);

/**
 * A failed call's reply text. A write that timed out or was cut off may have applied: `-TIMEOUT`
 * says its outcome is unknown (retrying it may apply it twice). Otherwise `-CLUSTERDOWN` for
 * what nothing came of and a retry may fix (no leader, a node down), `-ERR` for the rest.
 */
function errorText(error: unknown, write: boolean): string {
  if (!(error instanceof RingraftError)) return `ERR ${error instanceof Error ? error.message : String(error)}`;
  if (write && (error.code === ErrorCode.TIMEOUT || error.code === ErrorCode.CLOSED)) return `TIMEOUT ${error.code}: ${error.message}; the command may or may not have taken effect`;
  switch (error.code) {
    case ErrorCode.NOT_LEADER:
    case ErrorCode.NODE_DOWN:
    case ErrorCode.UNAVAILABLE:
    case ErrorCode.TIMEOUT:
    case ErrorCode.TRANSFER_IN_PROGRESS:
    case ErrorCode.PROPOSALS_FULL:
    case ErrorCode.CLOSED:
      return `CLUSTERDOWN ${error.code}: ${error.message}`;
    default:
      return `ERR ${error.code}: ${error.message}`;
  }
}

/** Whether `text` matches a CONFIG GET pattern (`*` and `?` only). */
function globText(pattern: string, text: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return re.test(text);
}

