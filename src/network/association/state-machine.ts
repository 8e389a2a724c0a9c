/**
 * The DICOM Upper Layer protocol state machine, PS3.8 §9.2, Table 9-10, as data: for each
 * (state, event) pair the action to perform and the state it leads to. A pair that is not in the
 * table is not applicable (the event cannot happen in that state, e.g. a PDU before the
 * transport connection is open); the association treats it as a bug on our side.
 *
 * Layer: network/association. Pure data and one lookup; the actions live in `actions.ts`.
 */

/** The thirteen states of PS3.8 Table 9-10 (descriptions from the table's state definitions). */
export type State =
  | 'Sta1'
  | 'Sta2'
  | 'Sta3'
  | 'Sta4'
  | 'Sta5'
  | 'Sta6'
  | 'Sta7'
  | 'Sta8'
  | 'Sta9'
  | 'Sta10'
  | 'Sta11'
  | 'Sta12'
  | 'Sta13';

/** Short meanings of the states, for logs and the console. */
export const STATE_DESCRIPTIONS: Readonly<Record<State, string>> = {
  Sta1: 'idle',
  Sta2: 'transport connection open, awaiting A-ASSOCIATE-RQ',
  Sta3: 'awaiting local A-ASSOCIATE response',
  Sta4: 'awaiting transport connection to open',
  Sta5: 'awaiting A-ASSOCIATE-AC or -RJ',
  Sta6: 'association established, ready for data transfer',
  Sta7: 'awaiting A-RELEASE-RP',
  Sta8: 'awaiting local A-RELEASE response',
  Sta9: 'release collision, requestor side, awaiting local A-RELEASE response',
  Sta10: 'release collision, acceptor side, awaiting A-RELEASE-RP',
  Sta11: 'release collision, requestor side, awaiting A-RELEASE-RP',
  Sta12: 'release collision, acceptor side, awaiting local A-RELEASE response',
  Sta13: 'awaiting transport connection close',
};

/** The nineteen events of PS3.8 Table 9-10. */
export type Event =
  | 'Evt1' // A-ASSOCIATE request (local user)
  | 'Evt2' // transport connect confirmation
  | 'Evt3' // A-ASSOCIATE-AC PDU received
  | 'Evt4' // A-ASSOCIATE-RJ PDU received
  | 'Evt5' // transport connection indication
  | 'Evt6' // A-ASSOCIATE-RQ PDU received
  | 'Evt7' // A-ASSOCIATE response primitive (accept)
  | 'Evt8' // A-ASSOCIATE response primitive (reject)
  | 'Evt9' // P-DATA request primitive
  | 'Evt10' // P-DATA-TF PDU received
  | 'Evt11' // A-RELEASE request primitive
  | 'Evt12' // A-RELEASE-RQ PDU received
  | 'Evt13' // A-RELEASE-RP PDU received
  | 'Evt14' // A-RELEASE response primitive
  | 'Evt15' // A-ABORT request primitive
  | 'Evt16' // A-ABORT PDU received
  | 'Evt17' // transport connection closed indication
  | 'Evt18' // ARTIM timer expired
  | 'Evt19'; // unrecognized or invalid PDU received

/** The actions of PS3.8 §9.2.2 (Tables 9-6 to 9-9). */
export type Action =
  | 'AE-1'
  | 'AE-2'
  | 'AE-3'
  | 'AE-4'
  | 'AE-5'
  | 'AE-6'
  | 'AE-7'
  | 'AE-8'
  | 'DT-1'
  | 'DT-2'
  | 'AR-1'
  | 'AR-2'
  | 'AR-3'
  | 'AR-4'
  | 'AR-5'
  | 'AR-6'
  | 'AR-7'
  | 'AR-8'
  | 'AR-9'
  | 'AR-10'
  | 'AA-1'
  | 'AA-2'
  | 'AA-3'
  | 'AA-4'
  | 'AA-5'
  | 'AA-6'
  | 'AA-7'
  | 'AA-8';

/**
 * The state each action leads to. Two actions choose between two states: AE-6 (Sta3 when the
 * request is acceptable to the service provider, else Sta13) and AR-8 (Sta9 on the requestor
 * side, Sta10 on the acceptor side).
 */
export const ACTION_NEXT_STATES: Readonly<Record<Action, readonly State[]>> = {
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

type Row = Partial<Record<State, Action>>;

/** States Sta6 to Sta12 share most of their entries. */
const ESTABLISHED_AND_RELEASING: readonly State[] = [
  'Sta6',
  'Sta7',
  'Sta8',
  'Sta9',
  'Sta10',
  'Sta11',
  'Sta12',
];

function row(entries: Row, established?: Action): Row {
  const out: Row = {};
  if (established !== undefined)
    for (const state of ESTABLISHED_AND_RELEASING) out[state] = established;
  return { ...out, ...entries };
}

/** PS3.8 Table 9-10, one row per event, one column per state. */
const TABLE: Readonly<Record<Event, Row>> = {
  Evt1: row({ Sta1: 'AE-1' }),
  Evt2: row({ Sta4: 'AE-2' }),
  Evt3: row({ Sta2: 'AA-1', Sta3: 'AA-8', Sta5: 'AE-3', Sta13: 'AA-6' }, 'AA-8'),
  Evt4: row({ Sta2: 'AA-1', Sta3: 'AA-8', Sta5: 'AE-4', Sta13: 'AA-6' }, 'AA-8'),
  Evt5: row({ Sta1: 'AE-5' }),
  Evt6: row({ Sta2: 'AE-6', Sta3: 'AA-8', Sta5: 'AA-8', Sta13: 'AA-7' }, 'AA-8'),
  Evt7: row({ Sta3: 'AE-7' }),
  Evt8: row({ Sta3: 'AE-8' }),
  Evt9: row({ Sta6: 'DT-1', Sta8: 'AR-7' }),
  Evt10: row(
    { Sta2: 'AA-1', Sta3: 'AA-8', Sta5: 'AA-8', Sta6: 'DT-2', Sta7: 'AR-6', Sta13: 'AA-6' },
    'AA-8',
  ),
  Evt11: row({ Sta6: 'AR-1' }),
  Evt12: row(
    { Sta2: 'AA-1', Sta3: 'AA-8', Sta5: 'AA-8', Sta6: 'AR-2', Sta7: 'AR-8', Sta13: 'AA-6' },
    'AA-8',
  ),
  Evt13: row(
    {
      Sta2: 'AA-1',
      Sta3: 'AA-8',
      Sta5: 'AA-8',
      Sta7: 'AR-3',
      Sta10: 'AR-10',
      Sta11: 'AR-3',
      Sta13: 'AA-6',
    },
    'AA-8',
  ),
  Evt14: row({ Sta8: 'AR-4', Sta9: 'AR-9', Sta12: 'AR-4' }),
  Evt15: row({ Sta3: 'AA-1', Sta4: 'AA-2', Sta5: 'AA-1' }, 'AA-1'),
  Evt16: row({ Sta2: 'AA-2', Sta3: 'AA-3', Sta5: 'AA-3', Sta13: 'AA-2' }, 'AA-3'),
  Evt17: row({ Sta2: 'AA-5', Sta3: 'AA-4', Sta4: 'AA-4', Sta5: 'AA-4', Sta13: 'AR-5' }, 'AA-4'),
  Evt18: row({ Sta2: 'AA-2', Sta13: 'AA-2' }),
  Evt19: row({ Sta2: 'AA-1', Sta3: 'AA-8', Sta5: 'AA-8', Sta13: 'AA-7' }, 'AA-8'),
};

/** One entry of the table: the action and the state(s) it may lead to. */
export interface Transition {
  readonly action: Action;
  readonly next: readonly State[];
}

/** The table entry for (state, event), or undefined when the pair is not applicable. */
export function lookupTransition(state: State, event: Event): Transition | undefined {
  return TRANSITIONS.get(event)?.get(state);
}

/** The table with its entries made once, so that a lookup on the data path allocates nothing. */
const TRANSITIONS: ReadonlyMap<Event, ReadonlyMap<State, Transition>> = new Map(
  (Object.entries(TABLE) as [Event, Row][]).map(([event, row]) => [
    event,
    new Map(
      (Object.entries(row) as [State, Action][]).map(([state, action]) => [
        state,
        { action, next: ACTION_NEXT_STATES[action] },
      ]),
    ),
  ]),
);
