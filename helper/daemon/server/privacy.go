package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/chadthrottle/chadthrottle/helper/api"
)

// What a caller without manage sees of other users' apps: name, user and
// traffic — no executable path, pids, command lines, connections, limits
// or rules (command lines carry secrets; paths in home directories say what
// people work on; hidepid=2 hides the same from /proc). Its own apps it
// sees in full. Another user's app is named by a hidden id,
// "<uid>:#<hash of the path>", that GetAppDetails accepts.

// hiddenID is the id of another user's app for a caller without manage:
// keyed with a secret of this helper run, so nobody can compute the id of
// a path they guess.
func hiddenID(a api.App) string {
	m := hmac.New(sha256.New, hiddenKey[:])
	m.Write([]byte(a.ID))
	return strconv.FormatUint(uint64(a.UID), 10) + ":#" + hex.EncodeToString(m.Sum(nil)[:8])
}

var hiddenKey = func() (k [32]byte) {
	if _, err := rand.Read(k[:]); err != nil {
		panic("no random numbers: " + err.Error())
	}
	return k
}()

var (
	errNotFound  = api.ErrNoSuch
	errOthersApp = errors.New("another user's app is named by the id GetApps gives it (its path is not shown without the manage permission)")
)

func isHiddenID(id string) bool {
	_, rest, ok := strings.Cut(id, ":")
	return ok && strings.HasPrefix(rest, "#")
}

// redactApp keeps what everyone may see of another user's app. An icon
// given as a path (from the user's own .desktop file) is dropped: it would
// make other users' windows read a file of that user's choosing.
func redactApp(a api.App) api.App {
	if strings.HasPrefix(a.Icon, "/") {
		a.Icon = ""
	}
	return api.App{
		ID: hiddenID(a), Name: a.Name, Icon: a.Icon, UID: a.UID, User: a.User, PIDs: []int32{},
		RxRate: a.RxRate, TxRate: a.TxRate, RxBytes: a.RxBytes, TxBytes: a.TxBytes,
	}
}

// redactSnapshot redacts the apps of uids other than uid, and leaves out
// those that are listed only because of a rule (no process, no traffic):
// they would show the rule's path.
func redactSnapshot(snap api.Snapshot, uid uint32) api.Snapshot {
	apps := make([]api.App, 0, len(snap.Apps))
	for _, a := range snap.Apps {
		switch {
		case a.UID == uid:
			apps = append(apps, a)
		case len(a.PIDs) > 0 || a.RxBytes > 0 || a.TxBytes > 0:
			apps = append(apps, redactApp(a))
		}
	}
	snap.Apps = apps
	return snap
}

// resolveAppID turns a hidden id into the app's real id (from snap), and
// checks that a caller without manage (all false) names another user's app
// only by its hidden id: the real id would let it test whether someone
// runs a given program.
func resolveAppID(id string, uid uint32, all bool, snap api.Snapshot) (real string, redact bool, err error) {
	if isHiddenID(id) {
		for _, a := range snap.Apps {
			if hiddenID(a) == id {
				return a.ID, !all && a.UID != uid, nil
			}
		}
		return "", false, fmt.Errorf("%w: no app %s", errNotFound, id)
	}
	owner, _, _ := strings.Cut(id, ":")
	if !all && owner != strconv.FormatUint(uint64(uid), 10) {
		return "", false, errOthersApp
	}
	return id, false, nil
}
