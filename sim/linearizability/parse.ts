/**
 * Parsers for the two known-answer history formats in shared/testdata/linearizability: the
 * EDN-like key-value records and Jepsen etcd register logs. Times are line numbers, which
 * preserves the real-time order the files were written in.
 */
import { EventType, HistoryEvent, HistoryFormatError, Operation, pairEvents } from './history';
import { KvInput, KvOutput, RegisterInput, RegisterOutput, RegisterValue } from './model';

const KV_LINE =
  /^\{:process (\d+), :type :(invoke|ok|fail|info), :f :(get|put|append), :key "((?:[^"\\]|\\.)*)", :value (nil|"((?:[^"\\]|\\.)*)")\}$/;

/**
 * Parses `{:process P, :type :invoke|:ok, :f :get|:put|:append, :key "K", :value "V"}` lines.
 * Blank lines are skipped; anything else malformed throws HistoryFormatError.
 *
 * @example
 * const ops = parseKvHistory(fs.readFileSync(file, 'utf8'), file);
 */
export function parseKvHistory(text: string, file = '<kv history>'): Operation<KvInput, KvOutput>[] {
  const events: HistoryEvent<KvInput, KvOutput>[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const s = raw.trim();
    if (s === '') return;
    const m = KV_LINE.exec(s);
    if (!m) throw new HistoryFormatError(file, line, `not a key-value record: ${JSON.stringify(raw)}`);
    const [, proc, type, f, rawKey, , rawValue] = m;
    const key = unescape(rawKey);
    const value = rawValue === undefined ? undefined : unescape(rawValue);
    const event: HistoryEvent<KvInput, KvOutput> = { clientId: Number(proc), type: type as EventType, time: line, line };
    if (type === 'invoke') {
      if (f === 'get') event.input = { op: 'get', key };
      else if (value === undefined) throw new HistoryFormatError(file, line, `${f} without a value`);
      else event.input = { op: f as 'put' | 'append', key, value };
    } else if (type === 'ok') {
      if (f === 'get' && value === undefined) throw new HistoryFormatError(file, line, 'get completed without a value');
      // put/append return nothing; only a get's completion carries an observation.
      event.output = f === 'get' ? value : undefined;
    }
    events.push(event);
  });
  return pairEvents(events, file);
}

function unescape(s: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c));
}

const ETCD_LINE = /^INFO\s+jepsen\.util\s+-\s+(\d+)\s+:(invoke|ok|fail|info)\s+:(read|write|cas)\s+(.*?)\s*$/;

/**
 * Parses Jepsen etcd register log lines `INFO  jepsen.util - P <tab> :type <tab> :f <tab> VALUE`
 * (tabs or spaces). Values are `nil`, integers, `[old new]` for cas, or `:timed-out` on
 * `:info`/`:fail` completions. `:fail` drops the operation, `:info` leaves it pending forever.
 *
 * @example
 * const ops = parseEtcdLog(fs.readFileSync(file, 'utf8'), file);
 */
export function parseEtcdLog(text: string, file = '<etcd log>'): Operation<RegisterInput, RegisterOutput>[] {
  const events: HistoryEvent<RegisterInput, RegisterOutput>[] = [];
  const lastF = new Map<number, string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    const m = ETCD_LINE.exec(raw);
    if (!m) throw new HistoryFormatError(file, line, `not a Jepsen register log line: ${JSON.stringify(raw)}`);
    const [, proc, type, f, rawValue] = m;
    const clientId = Number(proc);
    const event: HistoryEvent<RegisterInput, RegisterOutput> = { clientId, type: type as EventType, time: line, line };
    if (type === 'invoke') {
      lastF.set(clientId, f);
      if (f === 'read') event.input = { op: 'read' };
      else if (f === 'write') event.input = { op: 'write', value: scalar(rawValue, file, line) };
      else {
        const [from, to] = pair(rawValue, file, line);
        event.input = { op: 'cas', from, to };
      }
    } else {
      // A completion must name the same function as its invoke, or the pairing is wrong.
      if (lastF.has(clientId) && lastF.get(clientId) !== f) {
        throw new HistoryFormatError(file, line, `:${f} completes a :${lastF.get(clientId)} of process ${clientId}`);
      }
      if (type === 'ok') {
        if (f === 'read') event.output = scalar(rawValue, file, line);
        else if (f === 'cas') event.output = true;
        else event.output = undefined;
      }
    }
    events.push(event);
  });
  return pairEvents(events, file);
}

function scalar(raw: string, file: string, line: number): RegisterValue {
  if (raw === 'nil') return null;
  if (/^-?\d+$/.test(raw)) return Number(raw);
  throw new HistoryFormatError(file, line, `expected nil or an integer, got ${JSON.stringify(raw)}`);
}

function pair(raw: string, file: string, line: number): [RegisterValue, RegisterValue] {
  const m = /^\[\s*(\S+)\s+(\S+)\s*\]$/.exec(raw);
  if (!m) throw new HistoryFormatError(file, line, `expected [old new], got ${JSON.stringify(raw)}`);
  return [scalar(m[1], file, line), scalar(m[2], file, line)];
}
