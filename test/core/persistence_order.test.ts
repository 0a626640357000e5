/**
 * Seed 002's persistence rules meet crash recovery: the order in which a step's hard state and
 * entries reach storage, and a restart from a log whose last term is ahead of the saved hard state
 * (found by the simulator, seed 84: a torn write kept a term's entries and lost the term).
 */
import { expect } from 'chai';
import { appendReq, follower, i, logOfTerms, makeCore, normalEntry, ofType, t } from './helpers/fixtures';

describe('persistence order and recovery', () => {
  it('an AppendEntries that raises the term saves the hard state before the entries of that term', () => {
    const core = follower(2, [1, 1], { term: 1 });
    core.takeCommands();
    core.step({ type: 'appendEntries', reqId: 1, req: appendReq(1, 3, 2, 1, [normalEntry(3, 3)]) });
    const cmds = core.takeCommands();
    const kinds = cmds.map((c) => c.type).filter((k) => k === 'saveHardState' || k === 'appendLog');
    expect(kinds).to.deep.equal(['saveHardState', 'appendLog']);
    expect(ofType(cmds, 'saveHardState')[0]!.hardState.currentTerm).to.equal(3);
  });

  it('a restart whose log ends in a term above the saved hard state takes that term, with no vote, and saves it', () => {
    const core = makeCore({ id: 2, entries: logOfTerms([1, 1, 4]), term: 3, votedFor: 1 });
    expect(core.status()).to.include({ currentTerm: t(4), votedFor: null, lastLogIndex: i(3) });
    const saves = ofType(core.takeCommands(), 'saveHardState');
    expect(saves).to.have.length(1);
    expect(saves[0]!.hardState).to.deep.equal({ currentTerm: 4, votedFor: null });
  });

  it('a restart whose hard state is at or above the log keeps its term and vote', () => {
    const core = makeCore({ id: 2, entries: logOfTerms([1, 2]), term: 5, votedFor: 3 });
    expect(core.status()).to.include({ currentTerm: t(5), votedFor: 3 });
    expect(ofType(core.takeCommands(), 'saveHardState')).to.deep.equal([]);
  });
});
