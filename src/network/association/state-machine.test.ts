/**
 * Checks the association state machine against PS3.8 §9.2: every (state, event) pair of
 * Table 9-10 and every action's next state from Tables 9-6 to 9-9. The expected data below is
 * transcribed from the standard on its own, not derived from `state-machine.ts`, so a slip in
 * either shows up as a failing pair.
 *
 * Layer: network/association (unit test). Imports only the module under test and vitest.
 */
import { describe, expect, it } from 'vitest';
import {
  ACTION_NEXT_STATES,
  type Action,
  type Event,
  lookupTransition,
  type State,
} from './state-machine.js';

const STATES = [
  'Sta1',
  'Sta2',
  'Sta3',
  'Sta4',
  'Sta5',
  'Sta6',
  'Sta7',
  'Sta8',
  'Sta9',
  'Sta10',
  'Sta11',
  'Sta12',
  'Sta13',
] as const satisfies readonly State[];

/** Event names as Table 9-10 labels its rows, shortened; used only to make test names readable. */
const EVENT_MEANINGS: Readonly<Record<Event, string>> = {
  Evt1: 'A-ASSOCIATE request (local user)',
  Evt2: 'transport connect confirmation',
  Evt3: 'A-ASSOCIATE-AC PDU received',
  Evt4: 'A-ASSOCIATE-RJ PDU received',
  Evt5: 'transport connection indication',
  Evt6: 'A-ASSOCIATE-RQ PDU received',
  Evt7: 'A-ASSOCIATE response (accept)',
  Evt8: 'A-ASSOCIATE response (reject)',
  Evt9: 'P-DATA request',
  Evt10: 'P-DATA-TF PDU received',
  Evt11: 'A-RELEASE request',
  Evt12: 'A-RELEASE-RQ PDU received',
  Evt13: 'A-RELEASE-RP PDU received',
  Evt14: 'A-RELEASE response',
  Evt15: 'A-ABORT request',
  Evt16: 'A-ABORT PDU received',
  Evt17: 'transport connection closed indication',
  Evt18: 'ARTIM timer expired',
  Evt19: 'unrecognized or invalid PDU received',
};

/** An empty cell of Table 9-10: the event is not applicable in that state. */
const __ = undefined;

type Cell = Action | typeof __;
/** One row of Table 9-10: the cells for Sta1 to Sta13, in that order. */
type Row = readonly [Cell, Cell, Cell, Cell, Cell, Cell, Cell, Cell, Cell, Cell, Cell, Cell, Cell];

/**
 * PS3.8 §9.2.3, Table 9-10 "DICOM Upper Layer Protocol State Transition Table": the action for
 * each event (row) in each state (column). Transcribed from the standard's table; cross-read
 * against the action triggers listed in PS3.8 §9.2.2, Tables 9-6 to 9-9.
 */
// biome-ignore format: the rows keep the standard's grid, one column per state
const TABLE_9_10: Readonly<Record<Event, Row>> = {
  //       Sta1    Sta2    Sta3    Sta4    Sta5    Sta6    Sta7    Sta8    Sta9    Sta10   Sta11    Sta12   Sta13
  Evt1:  ['AE-1', __,     __,     __,     __,     __,     __,     __,     __,     __,     __,      __,     __    ],
  Evt2:  [__,     __,     __,     'AE-2', __,     __,     __,     __,     __,     __,     __,      __,     __    ],
  Evt3:  [__,     'AA-1', 'AA-8', __,     'AE-3', 'AA-8', 'AA-8', 'AA-8', 'AA-8', 'AA-8', 'AA-8',  'AA-8', 'AA-6'],
  Evt4:  [__,     'AA-1', 'AA-8', __,     'AE-4', 'AA-8', 'AA-8', 'AA-8', 'AA-8', 'AA-8', 'AA-8',  'AA-8', 'AA-6'],
  Evt5:  ['AE-5', __,     __,     __,     __,     __,     __,     __,     __,     __,     __,      __,     __    ],
  Evt6:  [__,     'AE-6', 'AA-8', __,     'AA-8', 'AA-8', 'AA-8', 'AA-8', 'AA-8', 'AA-8', 'AA-8',  'AA-8', 'AA-7'],
  Evt7:  [__,     __,     'AE-7', __,     __,     __,     __,     __,     __,     __,     __,      __,     __    ],
  Evt8:  [__,     __,     'AE-8', __,     __,     __,     __,     __,     __,     __,     __,      __,     __    ],
  Evt9:  [__,     __,     __,     __,     __,     'DT-1', __,     'AR-7', __,     __,     __,      __,     __    ],
  Evt10: [__,     'AA-1', 'AA-8', __,     'AA-8', 'DT-2', 'AR-6', 'AA-8', 'AA-8', 'AA-8', 'AA-8',  'AA-8', 'AA-6'],
  Evt11: [__,     __,     __,     __,     __,     'AR-1', __,     __,     __,     __,     __,      __,     __    ],
  Evt12: [__,     'AA-1', 'AA-8', __,     'AA-8', 'AR-2', 'AR-8', 'AA-8', 'AA-8', 'AA-8', 'AA-8',  'AA-8', 'AA-6'],
  Evt13: [__,     'AA-1', 'AA-8', __,     'AA-8', 'AA-8', 'AR-3', 'AA-8', 'AA-8', 'AR-10', 'AR-3', 'AA-8', 'AA-6'],
  Evt14: [__,     __,     __,     __,     __,     __,     __,     'AR-4', 'AR-9', __,     __,      'AR-4', __    ],
  Evt15: [__,     __,     'AA-1', 'AA-2', 'AA-1', 'AA-1', 'AA-1', 'AA-1', 'AA-1', 'AA-1', 'AA-1',  'AA-1', __    ],
  Evt16: [__,     'AA-2', 'AA-3', __,     'AA-3', 'AA-3', 'AA-3', 'AA-3', 'AA-3', 'AA-3', 'AA-3',  'AA-3', 'AA-2'],
  Evt17: [__,     'AA-5', 'AA-4', 'AA-4', 'AA-4', 'AA-4', 'AA-4', 'AA-4', 'AA-4', 'AA-4', 'AA-4',  'AA-4', 'AR-5'],
  Evt18: [__,     'AA-2', __,     __,     __,     __,     __,     __,     __,     __,     __,      __,     'AA-2'],
  Evt19: [__,     'AA-1', 'AA-8', __,     'AA-8', 'AA-8', 'AA-8', 'AA-8', 'AA-8', 'AA-8', 'AA-8',  'AA-8', 'AA-7'],
};

/**
 * The next state named in each action's definition, PS3.8 §9.2.2: Table 9-6 (AE), 9-7 (DT),
 * 9-8 (AR), 9-9 (AA). AE-6 leads to Sta3 when the A-ASSOCIATE-RQ is acceptable to the
 * service-provider, otherwise to Sta13; AR-8 leads to Sta9 on the association-requestor side,
 * otherwise to Sta10.
 */
const ACTION_DEFINITIONS: Readonly<Record<Action, readonly State[]>> = {
  'AE-1': ['Sta4'],
  'AE-2': ['Sta5'],
  'AE-3': ['Sta6'],
  'AE-4': ['Sta1'],
  'AE-5': ['Sta2'],
  'AE-6': ['Sta3', 'Sta13'],
  'AE-7': ['Sta6'],
  'AE-8': ['Sta13'],
  'DT-1': ['Sta6'],
  'DT-2': ['Sta6'],
  'AR-1': ['Sta7'],
  'AR-2': ['Sta8'],
  'AR-3': ['Sta1'],
  'AR-4': ['Sta13'],
  'AR-5': ['Sta1'],
  'AR-6': ['Sta7'],
  'AR-7': ['Sta8'],
  'AR-8': ['Sta9', 'Sta10'],
  'AR-9': ['Sta11'],
  'AR-10': ['Sta12'],
  'AA-1': ['Sta13'],
  'AA-2': ['Sta1'],
  'AA-3': ['Sta1'],
  'AA-4': ['Sta1'],
  'AA-5': ['Sta1'],
  'AA-6': ['Sta13'],
  'AA-7': ['Sta13'],
  'AA-8': ['Sta13'],
};

interface Pair {
  readonly state: State;
  readonly event: Event;
  readonly meaning: string;
  readonly action: Cell;
}

const PAIRS: readonly Pair[] = (Object.keys(TABLE_9_10) as Event[]).flatMap((event) =>
  STATES.map((state, column) => ({
    state,
    event,
    meaning: EVENT_MEANINGS[event],
    action: TABLE_9_10[event][column],
  })),
);

const APPLICABLE = PAIRS.filter(
  (pair): pair is Pair & { readonly action: Action } => pair.action !== __,
);
const NOT_APPLICABLE = PAIRS.filter((pair) => pair.action === __);

describe('association state machine (PS3.8 Table 9-10)', () => {
  it('covers all 13 states and 19 events, 247 pairs', () => {
    expect(PAIRS).toHaveLength(13 * 19);
  });

  it.each(APPLICABLE)(
    'in $state, $event ($meaning) performs $action and moves to its next state',
    ({ state, event, action }) => {
      expect(lookupTransition(state, event)).toEqual({
        action,
        next: ACTION_DEFINITIONS[action],
      });
    },
  );

  it.each(NOT_APPLICABLE)('in $state, $event ($meaning) is not applicable', ({ state, event }) => {
    expect(lookupTransition(state, event)).toBeUndefined();
  });

  it.each(Object.entries(ACTION_DEFINITIONS) as [Action, readonly State[]][])(
    'action %s leads to the next state(s) its definition names: %j',
    (action, next) => {
      expect(ACTION_NEXT_STATES[action]).toEqual(next);
    },
  );

  it('defines a next state for exactly the 28 actions of Tables 9-6 to 9-9', () => {
    expect(Object.keys(ACTION_NEXT_STATES).sort()).toEqual(Object.keys(ACTION_DEFINITIONS).sort());
  });
});
