package benchmarks

import (
	"os"
	"testing"

	"github.com/lddynamodb/lddynamodb/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m))
}
