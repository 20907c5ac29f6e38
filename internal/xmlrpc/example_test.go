package xmlrpc_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/xmlrpc"
)

// A server's loop: decode the call, convert its parameters to the
// method's Go types, encode the result or a fault.
func ExampleDecodeCall() {
	body := strings.NewReader(`<?xml version="1.0"?>
<methodCall><methodName>command.run</methodName><params>
<param><value><array><data><value>uptime</value></data></array></value></param>
<param><value><struct><member><name>timeout</name><value>30s</value></member></struct></value></param>
</params></methodCall>`)
	call, err := xmlrpc.DecodeCall(body, xmlrpc.Limits{})
	if err != nil {
		xmlrpc.EncodeFault(os.Stdout, gofunc.AsFault(err))
		return
	}
	type options struct{ Timeout time.Duration }
	argv, _ := xmlrpc.ConvertNamed("argv", call.Params[0], reflect.TypeFor[[]string]())
	opts, _ := xmlrpc.ConvertNamed("options", call.Params[1], reflect.TypeFor[options]())
	fmt.Println(call.Method, argv.Interface(), opts.Interface().(options).Timeout)
	// Output: command.run [uptime] 30s
}

func ExampleDecodeCall_limits() {
	deep := strings.Repeat("<value><array><data>", 40)
	_, err := xmlrpc.DecodeCall(strings.NewReader(
		"<methodCall><methodName>a</methodName><params><param>"+deep),
		xmlrpc.Limits{MaxDepth: 8})
	fmt.Println(err, errors.Is(err, gofunc.ErrTooLarge))
	// Output: fault -32003 (too large): request nests deeper than 8 levels (MaxDepth) true
}

func ExampleEncodeResponse() {
	type service struct {
		Name    string
		Running bool
		PID     int64 `xmlrpc:"main_pid"`
	}
	var buf bytes.Buffer
	if err := xmlrpc.EncodeResponse(&buf, service{Name: "nginx", Running: true, PID: 4242}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(buf.String())
	// Output:
	// <?xml version="1.0" encoding="UTF-8"?>
	// <methodResponse><params><param><value><struct><member><name>name</name><value><string>nginx</string></value></member><member><name>running</name><value><boolean>1</boolean></value></member><member><name>main_pid</name><value><int>4242</int></value></member></struct></value></param></params></methodResponse>
}

func ExampleEncodeFault() {
	var buf bytes.Buffer
	xmlrpc.EncodeFault(&buf, gofunc.Errorf(gofunc.CodeNoSuchMethod, "no method %q", "x.y"))
	_, err := xmlrpc.DecodeResponse(&buf, xmlrpc.Limits{})
	fmt.Println(errors.Is(err, gofunc.ErrNoSuchMethod), err)
	// Output: true fault -32601 (no such method): no method "x.y"
}

func ExampleConvert() {
	_, err := xmlrpc.ConvertNamed("argv", []any{"ls", int64(3)}, reflect.TypeFor[[]string]())
	fmt.Println(err)
	// Output: fault -32602 (bad arguments): argv[1]: want string, got int
}

func ExampleSnakeCase() {
	for _, name := range []string{"ListModules", "CPUInfo", "JobID", "Ping"} {
		fmt.Println(xmlrpc.SnakeCase(name))
	}
	// Output:
	// list_modules
	// cpu_info
	// job_id
	// ping
}
