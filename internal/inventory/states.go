package inventory

// StockState names a quantity of a level that units move between.
// AVAILABLE is what can be sold or reserved; DAMAGED, QUALITY_CONTROL and
// SAFETY_STOCK are on hand but not sellable; INCOMING is expected and not
// on hand yet.
type StockState string

// Stock states.
const (
	StateAvailable      StockState = "AVAILABLE"
	StateDamaged        StockState = "DAMAGED"
	StateQualityControl StockState = "QUALITY_CONTROL"
	StateSafetyStock    StockState = "SAFETY_STOCK"
	StateIncoming       StockState = "INCOMING"
)

// Valid reports whether s is one of the stock states.
func (s StockState) Valid() bool {
	switch s {
	case StateAvailable, StateDamaged, StateQualityControl, StateSafetyStock, StateIncoming:
		return true
	}
	return false
}

// States are the quantities of a level (or, summed, of a product) besides
// its on-hand stock and its reserved units. On a Movement they are the
// changes the movement makes to them.
type States struct {
	Damaged        int64
	QualityControl int64
	SafetyStock    int64
	// Incoming units are expected, not on hand: they are not part of
	// Stock.
	Incoming int64
}

// Held is the on-hand units that are not sellable.
func (s States) Held() int64 { return s.Damaged + s.QualityControl + s.SafetyStock }

// Plus is s changed by d.
func (s States) Plus(d States) States {
	return States{Damaged: s.Damaged + d.Damaged, QualityControl: s.QualityControl + d.QualityControl,
		SafetyStock: s.SafetyStock + d.SafetyStock, Incoming: s.Incoming + d.Incoming}
}

// Minus is s less d.
func (s States) Minus(d States) States {
	return s.Plus(States{Damaged: -d.Damaged, QualityControl: -d.QualityControl, SafetyStock: -d.SafetyStock, Incoming: -d.Incoming})
}

// Of is the quantity in state st (zero for AVAILABLE, which is not kept:
// see available).
func (s States) Of(st StockState) int64 {
	if p := s.field(st); p != nil {
		return *p
	}
	return 0
}

// Negative returns a state whose quantity is below zero, or "".
func (s States) Negative() StockState {
	for _, st := range []StockState{StateDamaged, StateQualityControl, StateSafetyStock, StateIncoming} {
		if s.Of(st) < 0 {
			return st
		}
	}
	return ""
}

func (s *States) field(st StockState) *int64 {
	switch st {
	case StateDamaged:
		return &s.Damaged
	case StateQualityControl:
		return &s.QualityControl
	case StateSafetyStock:
		return &s.SafetyStock
	case StateIncoming:
		return &s.Incoming
	}
	return nil
}

// available is what of stock can be sold or reserved: the one definition
// of availability, for levels and products alike.
func available(stock, reserved int64, s States) int64 { return stock - reserved - s.Held() }

// Transition is the change a movement makes to a level: Stock to its
// on-hand stock, States to its states; From and To name the states units
// left and entered ("": none named).
type Transition struct {
	Stock    int64
	States   States
	From, To StockState
}

// On sets the transition's changes on m.
func (t Transition) On(m *Movement) {
	m.Delta, m.StatesDelta, m.FromState, m.ToState = t.Stock, t.States, t.From, t.To
}

// Move is the transition of q units from one state to another at a
// level. Units leaving INCOMING arrive on hand; units entering INCOMING
// leave it. AVAILABLE is not kept: units entering or leaving it change
// only what the other states leave available.
func Move(from, to StockState, q int64) Transition {
	t := Transition{From: from, To: to}
	if p := t.States.field(from); p != nil {
		*p -= q
	}
	if p := t.States.field(to); p != nil {
		*p += q
	}
	switch {
	case from == StateIncoming && to != StateIncoming:
		t.Stock = q
	case to == StateIncoming && from != StateIncoming:
		t.Stock = -q
	}
	return t
}

// Quantity is the level's quantity in state st.
func (l Level) Quantity(st StockState) int64 {
	if st == StateAvailable {
		return l.Available()
	}
	return l.States.Of(st)
}

// Backordered is the units the level sold or holds beyond what it has:
// how far its available is below zero.
func (l Level) Backordered() int64 { return max(0, -l.Available()) }
