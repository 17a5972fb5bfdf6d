package faults

import (
	"math"
	"testing"

	"github.com/anishathalye/porcupine"
)

func op(client int, call, ret int64, in Input, out Output) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
}

// TestStockModel: the model accepts what a correct service may answer and
// refuses an oversell and a lost update, whatever the interleaving.
func TestStockModel(t *testing.T) {
	out1, in2 := Input{OpOut, 1}, Input{OpIn, 2}
	for name, c := range map[string]struct {
		ops  []porcupine.Operation
		want bool
	}{
		"concurrent sales of the last unit: one wins": {[]porcupine.Operation{
			op(0, 0, 10, out1, Output{OK, 0}), op(1, 1, 11, out1, Output{Insufficient, 0}),
		}, true},
		"both sell the last unit (oversell)": {[]porcupine.Operation{
			op(0, 0, 10, out1, Output{OK, 0}), op(1, 1, 11, out1, Output{OK, 0}),
		}, false},
		"a receipt overlapping a sale": {[]porcupine.Operation{
			op(0, 0, 10, in2, Output{OK, 3}), op(1, 1, 11, out1, Output{OK, 2}), op(2, 20, 21, Input{OpRead, 0}, Output{OK, 2}),
		}, true},
		"a lost update: the read misses a change": {[]porcupine.Operation{
			op(0, 0, 10, in2, Output{OK, 3}), op(1, 20, 21, Input{OpRead, 0}, Output{OK, 1}),
		}, false},
		"an unknown sale that happened": {[]porcupine.Operation{
			op(0, 0, math.MaxInt64, out1, Output{Unknown, 0}), op(1, 20, 21, Input{OpRead, 0}, Output{OK, 0}),
		}, true},
		"an unknown sale that did not": {[]porcupine.Operation{
			op(0, 0, math.MaxInt64, out1, Output{Unknown, 0}), op(1, 20, 21, Input{OpRead, 0}, Output{OK, 1}),
		}, true},
		"an unknown sale cannot happen twice": {[]porcupine.Operation{
			op(0, 0, math.MaxInt64, Input{OpIn, 5}, Output{Unknown, 0}), op(1, 20, 21, Input{OpRead, 0}, Output{OK, 11}),
		}, false},
	} {
		if got := porcupine.CheckOperations(StockModel(1), c.ops); got != c.want {
			t.Errorf("%s: linearizable %v, want %v", name, got, c.want)
		}
	}
}
