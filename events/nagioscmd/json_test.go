package nagioscmd

import "encoding/json"

func jsonData(v any) (json.RawMessage, error) { return json.Marshal(v) }
