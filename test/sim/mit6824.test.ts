/**
 * The MIT 6.824 Raft lab's tests (2020-2022 editions, labs 2A, 2B and 2C), ported to the
 * deterministic simulator: the real actors under a virtual clock, one seed per history. Each test
 * follows its lab counterpart step by step and asserts what the lab asserts, through the lab's
 * vocabulary in ./mit-harness.ts (connect/disconnect, crash1/start1, one, nCommitted, wait,
 * checkOneLeader, checkTerms, checkNoLeader). All times are virtual milliseconds; the lab's
 * RaftElectionTimeout is 1 s. On top of the lab's own checks, the simulator checks the Raft safety
 * invariants after every step, and every test ends with no node failed on its own.
 *
 * Where the lab assumes its own Raft's shape, the port says how ours differs: our log index 1 is
 * the cluster's config entry and every later leader adds a blank entry, so absolute indexes the
 * lab asserts are compared as positions among commands (`commandIndex`); and a write answers with
 * its index once committed, not at Start().
 *
 * A failing test names its seed, and replays exactly with it: MIT_SEEDS=<seed> npx mocha <this file>.
 */
import { expect } from 'chai';
import { RAFT_ELECTION_TIMEOUT_MS as ELECTION_TIMEOUT, runMit, type MitCluster, type MitOptions, type Started } from './mit-harness';

type Scenario = (h: MitCluster) => Promise<void>;

/**
 * Seeds on which a port fails because of a library bug this port found (not a harness problem).
 * They are registered as pending tests, with the reason, in every run; drop an entry once its bug
 * is fixed. MIT_RUN_KNOWN_FAILURES=1 runs them instead (to reproduce, or to check a fix).
 */
const KNOWN_FAILURES: Readonly<Record<string, Readonly<Record<number, string>>>> = {
  // Empty: Figure8Unreliable2C seeds 15, 27 and 77 failed here until the replication stream probed
  // one append at a time during log repair and resent appends a heartbeat showed lost.
};

/** Registers one mocha test per seed (known failures as pending tests with their reason). */
function scenario(title: string, seeds: readonly number[], opts: Omit<MitOptions, 'seed'>, body: Scenario): void {
  const known = process.env.MIT_RUN_KNOWN_FAILURES ? {} : KNOWN_FAILURES[title] ?? {};
  if (process.env.MIT_RUN_KNOWN_FAILURES) seeds = [...new Set([...seeds, ...Object.keys(KNOWN_FAILURES[title] ?? {}).map(Number)])];
  for (const seed of seeds) {
    if (known[seed] !== undefined) continue;
    it(`${title} (seed ${seed})`, () => runMit({ ...opts, seed }, body));
  }
  for (const [seed, reason] of Object.entries(known)) it.skip(`${title} (seed ${seed}): ${reason}`, () => runMit({ ...opts, seed: Number(seed) }, body));
}

/**
 * Seeds, fixed so every run replays the same histories. MIT_SEEDS="4-50" (or "7,9") runs other
 * seeds instead, for a soak; a failure names its seed.
 */
function seedsFromEnv(): number[] | null {
  const spec = process.env.MIT_SEEDS;
  if (spec === undefined || spec.trim() === '') return null;
  const seeds: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new Error(`MIT_SEEDS: bad part ${JSON.stringify(part)} (expected "N", "N-M" or a comma-separated list)`);
    for (let s = Number(m[1]); s <= Number(m[2] ?? m[1]); s++) seeds.push(s);
  }
  return seeds;
}

const SEEDS: readonly number[] = seedsFromEnv() ?? [1, 2, 3];

describe('MIT 6.824 Raft lab tests on the simulator', function () {
  this.timeout(60_000);

  describe('2A: leader election', () => {
    /**
     * TestInitialElection2A: three servers elect exactly one leader; then every server is in the
     * same term, at least 1; with no failure the term does not move over two election timeouts
     * (the lab only warns here; we assert it: on a reliable network with no failure nothing should
     * start an election), and there is still exactly one leader.
     */
    scenario('InitialElection2A', SEEDS, { servers: 3 }, async (h) => {
      await h.checkOneLeader();
      await h.sleep(50);
      const term1 = h.checkTerms();
      expect(term1, 'term after the first election').to.be.at.least(1);
      await h.sleep(2 * ELECTION_TIMEOUT);
      const term2 = h.checkTerms();
      expect(term2, 'term changed even though there were no failures').to.equal(term1);
      await h.checkOneLeader();
    });

    /**
     * TestReElection2A: when the leader is disconnected a new one is elected; the old leader's
     * return does not disturb having one leader; with two of three servers disconnected no leader
     * is elected among the connected one; once a majority is back a leader is elected again.
     */
    scenario('ReElection2A', SEEDS, { servers: 3 }, async (h) => {
      const leader1 = await h.checkOneLeader();
      h.disconnect(leader1);
      await h.checkOneLeader();
      h.connect(leader1);
      const leader2 = await h.checkOneLeader();
      h.disconnect(leader2);
      h.disconnect(h.peer(leader2, 1));
      await h.sleep(2 * ELECTION_TIMEOUT);
      h.checkNoLeader();
      h.connect(h.peer(leader2, 1));
      await h.checkOneLeader();
      h.connect(leader2);
      await h.checkOneLeader();
    });

    /**
     * TestManyElections2A: seven servers; nine times over, three random servers (possibly the same
     * one twice) are disconnected, and the remaining majority still has exactly one leader.
     */
    scenario('ManyElections2A', SEEDS, { servers: 7 }, async (h) => {
      await h.checkOneLeader();
      for (let ii = 1; ii < 10; ii++) {
        const gone = [h.randomServer(), h.randomServer(), h.randomServer()];
        for (const i of gone) h.disconnect(i);
        await h.checkOneLeader();
        for (const i of gone) h.connect(i);
      }
      await h.checkOneLeader();
    });
  });

  describe('2B: log replication', () => {
    /**
     * TestBasicAgree2B: three commands in a row each reach all three servers, none is applied
     * anywhere before it is started, and the k-th lands as the k-th command of the log.
     */
    scenario('BasicAgree2B', SEEDS, { servers: 3 }, async (h) => {
      for (let k = 1; k <= 3; k++) {
        for (let id = 1; id <= h.n; id++) expect(h.commandsApplied(id), `some have committed before Start() (server ${id})`).to.be.below(k);
        const index = await h.one(k * 100, h.n, false);
        expect(h.commandIndex(index), `command ${k * 100}: got command index`).to.equal(k);
      }
    });

    /**
     * TestCount2B counts the RPCs an election, ten agreements and a second of idleness take, against
     * bounds fitted to the lab's own design. Not ported: the bounds measure an implementation's
     * message pattern (ours streams pipelined AppendEntries and heartbeats every 50 ms, so the same
     * work sends a different number of messages without being wrong), and SimNetwork counts packets
     * (requests, answers, duplicates together), not RPCs per server as the lab's counter does.
     */
    it.skip('Count2B (not ported: asserts RPC counts fitted to the lab implementation; SimNetwork has no per-server RPC counter)', () => undefined);

    /**
     * TestFailAgree2B: with one of three followers disconnected the other two still agree on
     * commands, also across an election timeout; once it reconnects all three agree again.
     */
    scenario('FailAgree2B', SEEDS, { servers: 3 }, async (h) => {
      await h.one(101, 3, false);
      const leader = await h.checkOneLeader();
      h.disconnect(h.peer(leader, 1));
      await h.one(102, 2, false);
      await h.one(103, 2, false);
      await h.sleep(ELECTION_TIMEOUT);
      await h.one(104, 2, false);
      await h.one(105, 2, false);
      h.connect(h.peer(leader, 1));
      await h.one(106, 3, true);
      await h.sleep(ELECTION_TIMEOUT);
      await h.one(107, 3, true);
    });

    /**
     * TestFailNoAgree2B: with three of five followers disconnected the leader still accepts a
     * command, as the second command of its log, but nobody applies it over two election timeouts;
     * after reconnecting, the (possibly new) leader places its next command as the 2nd or 3rd
     * command, and then everyone agrees.
     */
    scenario('FailNoAgree2B', SEEDS, { servers: 5 }, async (h) => {
      await h.one(10, 5, false);
      const leader = await h.checkOneLeader();
      for (const k of [1, 2, 3]) h.disconnect(h.peer(leader, k));
      const s = await h.startAndLocate(leader, 20);
      expect(s.commandIndex, 'command index of Start(20)').to.equal(2);
      await h.sleep(2 * ELECTION_TIMEOUT);
      expect(h.nCommitted(s.index).count, `index ${s.index} committed but no majority`).to.equal(0);
      for (const k of [1, 2, 3]) h.connect(h.peer(leader, k));
      const leader2 = await h.checkOneLeader();
      const s2 = await h.startAndLocate(leader2, 30);
      expect(s2.commandIndex, 'command index of Start(30) on the new leader').to.be.within(2, 3);
      await h.one(1000, 5, true);
    });

    /**
     * TestConcurrentStarts2B: five commands started at once on the leader are all committed on
     * every server (retried up to five times if the term moves meanwhile, as the lab does).
     */
    scenario('ConcurrentStarts2B', SEEDS, { servers: 3 }, async (h) => {
      let success = false;
      attempts: for (let attempt = 0; attempt < 5; attempt++) {
        if (attempt > 0) await h.sleep(3_000);
        const leader = await h.checkOneLeader();
        const first = h.start(leader, 1);
        if (!first.ok) continue;
        const term = first.term;
        const starts = [0, 1, 2, 3, 4].map((i) => h.start(leader, 100 + i));
        const accepted = starts.filter((s): s is Started => s.ok && s.term === term);
        for (let id = 1; id <= h.n; id++) if (h.getState(id)?.term !== term) continue attempts;
        // Our Start() gives the index with the commit: wait for the answers, then for every server.
        const outcomes = await h.drive(Promise.all(accepted.map((s) => s.outcome)), 10_000);
        const cmds: number[] = [];
        for (const o of outcomes) {
          if (!o.ok) continue attempts; // not committed in this term
          const cmd = await h.wait(o.index, h.n, term);
          if (cmd === -1) continue attempts; // peers moved on to a later term
          if (typeof cmd !== 'number') return h.fail(`value ${cmd} at index ${o.index} is not a command`);
          cmds.push(cmd);
        }
        for (let i = 0; i < 5; i++) if (!cmds.includes(100 + i)) h.fail(`cmd ${100 + i} missing in ${JSON.stringify(cmds)}`);
        success = true;
        break;
      }
      if (!success) h.fail('term changed too often');
    });

    /**
     * TestRejoin2B: a disconnected leader accepts commands it cannot commit; the others elect a
     * leader and agree; when the old leader returns (and the new one leaves), its stale entries
     * are replaced and the cluster agrees again, then all three agree.
     */
    scenario('Rejoin2B', SEEDS, { servers: 3 }, async (h) => {
      await h.one(101, 3, true);
      const leader1 = await h.checkOneLeader();
      h.disconnect(leader1);
      for (const cmd of [102, 103, 104]) h.start(leader1, cmd);
      await h.one(103, 2, true);
      const leader2 = await h.checkOneLeader();
      h.disconnect(leader2);
      h.connect(leader1);
      await h.one(104, 2, true);
      h.connect(leader2);
      await h.one(105, 3, true);
    });

    /**
     * TestBackup2B: leaders in minority partitions pile up 50 uncommitted entries each while the
     * majority commits 50 others; when partitions change, a leader must back a follower up over
     * many conflicting entries quickly. Every agreement asked for is reached in time.
     */
    scenario('Backup2B', SEEDS, { servers: 5 }, async (h) => {
      await h.one(h.randomCommand(), 5, true);
      const leader1 = await h.checkOneLeader();
      for (const k of [2, 3, 4]) h.disconnect(h.peer(leader1, k));
      for (let i = 0; i < 50; i++) h.start(leader1, h.randomCommand());
      await h.sleep(ELECTION_TIMEOUT / 2);
      h.disconnect(h.peer(leader1, 0));
      h.disconnect(h.peer(leader1, 1));
      for (const k of [2, 3, 4]) h.connect(h.peer(leader1, k));
      for (let i = 0; i < 50; i++) await h.one(h.randomCommand(), 3, true);
      const leader2 = await h.checkOneLeader();
      let other = h.peer(leader1, 2);
      if (leader2 === other) other = h.peer(leader2, 1);
      h.disconnect(other);
      for (let i = 0; i < 50; i++) h.start(leader2, h.randomCommand());
      await h.sleep(ELECTION_TIMEOUT / 2);
      for (let id = 1; id <= h.n; id++) h.disconnect(id);
      h.connect(h.peer(leader1, 0));
      h.connect(h.peer(leader1, 1));
      h.connect(other);
      for (let i = 0; i < 50; i++) await h.one(h.randomCommand(), 3, true);
      for (let id = 1; id <= h.n; id++) h.connect(id);
      await h.one(h.randomCommand(), 5, true);
    });
  });

  describe('2C: persistence', () => {
    // As in the lab, a crashed server keeps only what Raft persisted: its state machine starts
    // empty and applies the log again from index 1 (the applied records, like the lab's, persist).
    const C = { durableStateMachine: false } as const;

    /**
     * TestPersist12C: agreement survives every server restarting, the leader restarting, a
     * follower restarting while the others commit, and a restarted server catches up.
     */
    scenario('Persist12C', SEEDS, { servers: 3, ...C }, async (h) => {
      await h.one(11, 3, true);
      for (let id = 1; id <= h.n; id++) await h.start1(id);
      for (let id = 1; id <= h.n; id++) { h.disconnect(id); h.connect(id); }
      await h.one(12, 3, true);
      const leader1 = await h.checkOneLeader();
      h.disconnect(leader1);
      await h.start1(leader1);
      h.connect(leader1);
      await h.one(13, 3, true);
      const leader2 = await h.checkOneLeader();
      h.disconnect(leader2);
      const index14 = await h.one(14, 2, true);
      await h.start1(leader2);
      h.connect(leader2);
      await h.wait(index14, 3, -1); // the restarted leader catches up before the next crash
      const i3 = h.peer(await h.checkOneLeader(), 1);
      h.disconnect(i3);
      await h.one(15, 2, true);
      await h.start1(i3);
      h.connect(i3);
      await h.one(16, 3, true);
    });

    /**
     * TestPersist22C: five rounds on five servers of: agree, partition the leader with two
     * followers, agree among three, then swap the majority for two restarted servers and a third
     * restarted later; each round's agreements are reached, and finally all five agree.
     */
    scenario('Persist22C', SEEDS, { servers: 5, ...C }, async (h) => {
      let index = 1;
      for (let iters = 0; iters < 5; iters++) {
        await h.one(10 + index, 5, true);
        index++;
        const leader1 = await h.checkOneLeader();
        const p = (k: number): number => h.peer(leader1, k);
        h.disconnect(p(1));
        h.disconnect(p(2));
        await h.one(10 + index, 3, true);
        index++;
        for (const k of [0, 3, 4]) h.disconnect(p(k));
        await h.start1(p(1));
        await h.start1(p(2));
        h.connect(p(1));
        h.connect(p(2));
        await h.sleep(ELECTION_TIMEOUT);
        await h.start1(p(3));
        h.connect(p(3));
        await h.one(10 + index, 3, true);
        index++;
        h.connect(p(4));
        h.connect(p(0));
      }
      await h.one(1000, 5, true);
    });

    /**
     * TestPersist32C: a follower misses a commit; then the leader and the other follower crash and
     * come back one at a time: the restarted pair must elect a leader that has the committed entry
     * and agree, and finally all three agree.
     */
    scenario('Persist32C', SEEDS, { servers: 3, ...C }, async (h) => {
      await h.one(101, 3, true);
      const leader = await h.checkOneLeader();
      h.disconnect(h.peer(leader, 2));
      await h.one(102, 2, true);
      await h.crash1(h.peer(leader, 0));
      await h.crash1(h.peer(leader, 1));
      h.connect(h.peer(leader, 2));
      await h.start1(h.peer(leader, 0));
      h.connect(h.peer(leader, 0));
      await h.one(103, 2, true);
      await h.start1(h.peer(leader, 1));
      h.connect(h.peer(leader, 1));
      await h.one(104, 3, true);
    });

    /**
     * TestFigure82C: the paper's Figure 8 hazard, provoked 1000 times over: every leader gets a
     * command and is crashed soon after (at random, mostly within 13 ms), servers restart whenever
     * fewer than three run. No two servers ever apply different commands at one index, and at the
     * end, with all servers back, all five agree on a new command.
     */
    scenario('Figure82C', SEEDS, { servers: 5, ...C }, async (h) => {
      await h.one(h.randomCommand(), 1, true);
      let nup = h.n;
      for (let iters = 0; iters < 1000; iters++) {
        let leader = -1;
        for (let id = 1; id <= h.n; id++) if (h.isUp(id) && h.start(id, h.randomCommand()).ok) leader = id;
        await h.sleep(h.chance(100) ? h.rng.nextInt(0, ELECTION_TIMEOUT / 2) : h.rng.nextInt(0, 13));
        if (leader !== -1) {
          await h.crash1(leader);
          nup--;
        }
        if (nup < 3) {
          const s = h.randomServer();
          if (!h.isUp(s)) {
            await h.start1(s);
            h.connect(s);
            nup++;
          }
        }
      }
      for (let id = 1; id <= h.n; id++) {
        if (!h.isUp(id)) {
          await h.start1(id);
          h.connect(id);
        }
      }
      await h.one(h.randomCommand(), 5, true);
    });

    /**
     * TestUnreliableAgree2C: on the unreliable network (lost, duplicated, delayed and reordered
     * packets), 49 rounds of five concurrent agreements, four of them in the background, each
     * applied by at least one server; then, reliable again, all five agree on a final command.
     */
    scenario('UnreliableAgree2C', SEEDS, { servers: 5, unreliable: true, ...C }, async (h) => {
      const clients: Promise<number>[] = [];
      for (let iters = 1; iters < 50; iters++) {
        for (let j = 0; j < 4; j++) clients.push(h.background(() => h.oneAsync(100 * iters + j, 1, true)));
        await h.one(iters, 1, true);
      }
      h.setUnreliable(false);
      await h.drive(Promise.all(clients), 15_000);
      await h.one(100, 5, true);
    });

    /**
     * TestFigure8Unreliable2C: Figure 8 on the unreliable network, with long reordering from the
     * 200th of 1000 rounds: each round every server is offered a command, and a connected leader is
     * disconnected half the time; servers reconnect whenever fewer than three are connected. At the
     * end, with everyone connected (network still unreliable and reordering), all five agree within
     * the lab's 10 s. Long reordering holds back answers only, as the lab's network does
     * (see LONG_REORDERING_NETWORK).
     */
    // Seeds 15, 27 and 77 are regressions of the replication-stream bugs this port found.
    scenario('Figure8Unreliable2C', [...SEEDS, 15, 27, 77], { servers: 5, unreliable: true, ...C }, async (h) => {
      await h.one(h.rng.nextInt(0, 10_000), 1, true);
      let nup = h.n;
      for (let iters = 0; iters < 1000; iters++) {
        if (iters === 200) h.setLongReordering();
        let leader = -1;
        for (let id = 1; id <= h.n; id++) if (h.start(id, h.rng.nextInt(0, 10_000)).ok && h.isConnected(id)) leader = id;
        await h.sleep(h.chance(100) ? h.rng.nextInt(0, ELECTION_TIMEOUT / 2) : h.rng.nextInt(0, 13));
        if (leader !== -1 && h.chance(ELECTION_TIMEOUT / 2)) {
          h.disconnect(leader);
          nup--;
        }
        if (nup < 3) {
          const s = h.randomServer();
          if (!h.isConnected(s)) {
            h.connect(s);
            nup++;
          }
        }
      }
      for (let id = 1; id <= h.n; id++) if (!h.isConnected(id)) h.connect(id);
      await h.one(h.rng.nextInt(0, 10_000), 5, true);
    });

    /**
     * The lab's internalChurn, behind TestReliableChurn2C and TestUnreliableChurn2C: three clients
     * keep offering commands to every server while, for 20 rounds of 0.7 s, servers are at random
     * disconnected, restarted and connected, or crashed. Then everything is healed; a last command
     * reaches all five servers, every index up to it is applied by all five, and every command a
     * client saw applied is in that log.
     */
    const churn = async (h: MitCluster): Promise<void> => {
      let stop = false;
      const client = async (me: number): Promise<number[]> => {
        const rng = h.rng.fork(`client${me}`);
        const values: number[] = [];
        while (!stop) {
          const x = rng.nextUint32();
          const accepted: Started[] = [];
          for (let id = 1; id <= h.n; id++) {
            const s = h.start(id, x);
            if (s.ok) accepted.push(s);
          }
          if (accepted.length === 0) {
            await h.sleepAsync(79 + me * 17);
            continue;
          }
          // The lab polls Start()'s index for 380 ms; ours is known once one of the leaders commits it.
          let index: number | null = null;
          void h.firstCommitted(accepted.map((s) => s.outcome)).then((i) => { index = i; });
          for (const to of [10, 20, 50, 100, 200]) {
            if (index !== null) {
              const { count, cmd } = h.nCommitted(index);
              if (count > 0) {
                if (typeof cmd !== 'number') h.fail(`wrong command type at index ${index}: ${cmd}`);
                if (cmd === x) values.push(x);
                break;
              }
            }
            await h.sleepAsync(to);
          }
        }
        return values;
      };
      const clients = [0, 1, 2].map((me) => h.background(() => client(me)));

      for (let iters = 0; iters < 20; iters++) {
        if (h.chance(200)) h.disconnect(h.randomServer());
        if (h.chance(500)) {
          const i = h.randomServer();
          if (!h.isUp(i)) await h.start1(i);
          h.connect(i);
        }
        if (h.chance(200)) {
          const i = h.randomServer();
          if (h.isUp(i)) await h.crash1(i);
        }
        // Often enough that the servers do not settle between changes, rarely enough that they can catch up.
        await h.sleep((ELECTION_TIMEOUT * 7) / 10);
      }

      await h.sleep(ELECTION_TIMEOUT);
      h.setUnreliable(false);
      for (let id = 1; id <= h.n; id++) {
        if (!h.isUp(id)) await h.start1(id);
        h.connect(id);
      }
      stop = true;
      const values = (await h.drive(Promise.all(clients), 5_000)).flat();
      await h.sleep(ELECTION_TIMEOUT);

      const lastIndex = await h.one(h.randomCommand(), 5, true);
      const really: number[] = [];
      for (let index = 1; index <= lastIndex; index++) {
        const v = await h.wait(index, 5, -1);
        if (typeof v === 'number') really.push(v); // our config and blank entries are not commands
      }
      for (const v of values) if (!really.includes(v)) h.fail(`didn't find a value: ${v}`);
      // Not in the lab: the check above would prove nothing if no client had seen a command applied.
      expect(values.length, 'commands the clients saw applied').to.be.greaterThan(0);
    };

    /** TestReliableChurn2C: the churn above on a reliable network. */
    scenario('ReliableChurn2C', SEEDS, { servers: 5, ...C }, churn);

    /** TestUnreliableChurn2C: the churn above on the unreliable network (reliable again for the final checks). */
    scenario('UnreliableChurn2C', SEEDS, { servers: 5, unreliable: true, ...C }, churn);
  });
});
