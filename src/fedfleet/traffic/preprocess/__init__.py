"""The traffic preprocessing: invalid values to null, nominal values to integers, normalise all
but ports.

Every flow characteristic goes through three steps, each of which can be switched off for
an ablation:

1. ``null_invalid`` (:mod:`.invalid`) — a value that is ±inf, NaN, unparsable as a number,
   or negative in a column where negatives are impossible becomes null (NaN in the output);
   in a nominal column, missing-value text ("NaN", "null", ...), ±inf and impossible
   negatives are null too, never categories;
2. ``encode_categorical`` (:mod:`.encoding`) — a non-numeric characteristic (or a declared
   nominal one such as the IP protocol) becomes an integer from a mapping fitted on the
   training flows; id 0 is reserved for values never seen in training, ids 1..K are the
   seen values;
3. ``normalise`` (:mod:`.scaling`) — every characteristic except ports is scaled with
   statistics of the training flows; ports stay integers, optionally bucketed into
   well-known (0), registered (1) and dynamic (2).

A column with no valid training value at all is dropped (``dropped_``). Which columns are
numbers, nominal or ports is decided in :mod:`.kinds`; the federated fit merges sites'
mappings and moments in :mod:`.merging`; :mod:`.persistence` validates a saved state.
Nulls stay NaN in the output: the tree classifier splits on them natively and the MLP
reads them as the training mean (0 after standard scaling).
"""

from fedfleet.traffic.preprocess.encoding import UNKNOWN_ID, category_strings
from fedfleet.traffic.preprocess.estimator import TrafficPreprocessor
from fedfleet.traffic.preprocess.invalid import FLOAT32_MAX, MAX_PORT, MISSING_TEXT, parse_numbers
from fedfleet.traffic.preprocess.kinds import (
    DYNAMIC_PORTS_START,
    REGISTERED_PORTS_START,
    ColumnKind,
    PortMode,
    port_bucket,
)
from fedfleet.traffic.preprocess.scaling import Moments, Scaling

__all__ = [
    "DYNAMIC_PORTS_START",
    "FLOAT32_MAX",
    "MAX_PORT",
    "MISSING_TEXT",
    "REGISTERED_PORTS_START",
    "UNKNOWN_ID",
    "ColumnKind",
    "Moments",
    "PortMode",
    "Scaling",
    "TrafficPreprocessor",
    "category_strings",
    "parse_numbers",
    "port_bucket",
]
