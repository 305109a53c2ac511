//go:build linux

package tc

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The clsact qdiscs and the cls_bpf filters on them.

func clsact(idx int) *netlink.GenericQdisc {
	return &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}, QdiscType: "clsact"}
}

// addClsact adds a clsact qdisc to l unless it has one (or, for ingress, an
// ingress qdisc) and reports whether it added it.
func (b *base) addClsact(l netlink.Link) (added bool, err error) {
	has, err := b.hasClsact(l)
	if err != nil || has {
		return false, err
	}
	if err := b.h.QdiscAdd(clsact(l.Attrs().Index)); err != nil {
		return false, fmt.Errorf("add clsact qdisc to %s: %w", l.Attrs().Name, err)
	}
	return true, nil
}

func (b *base) hasClsact(l netlink.Link) (bool, error) {
	qs, err := b.h.QdiscList(l)
	if err != nil {
		return false, fmt.Errorf("list qdiscs of %s: %w", l.Attrs().Name, err)
	}
	for _, q := range qs {
		if q.Type() == "clsact" || q.Type() == "ingress" && b.dir == ingress {
			return true, nil
		}
	}
	return false, nil
}

// onlyOurFilters reports whether l's clsact carries filters and all of
// them are the product's.
func (b *base) onlyOurFilters(l netlink.Link) (bool, error) {
	n := 0
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		fs, err := b.h.FilterList(l, parent)
		if err != nil {
			return false, fmt.Errorf("list filters of %s: %w", l.Attrs().Name, err)
		}
		for _, f := range fs {
			if p := f.Attrs().Priority; p != FilterPrio && p != PolicePrio && p != GlobalPrio {
				return false, nil
			}
			n++
		}
	}
	return n > 0, nil
}

// removeClsactIfEmpty deletes l's clsact qdisc when no filter is attached
// to either of its hooks.
func (b *base) removeClsactIfEmpty(l netlink.Link) error {
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		fs, err := b.h.FilterList(l, parent)
		if err != nil {
			return fmt.Errorf("list filters of %s: %w", l.Attrs().Name, err)
		}
		if len(fs) > 0 {
			return nil
		}
	}
	if err := b.h.QdiscDel(clsact(l.Attrs().Index)); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("remove clsact qdisc of %s: %w", l.Attrs().Name, err)
	}
	return nil
}

// addFilter puts on l's clsact hook of this direction the cls_bpf filter
// running prog with actions, replacing one with the same priority and
// handle.
func (b *base) addFilter(l netlink.Link, prio uint16, handle uint32, prog *ebpf.Program, actions ...netlink.Action) error {
	return addBPFFilter(b.rtnl, b.hook(), l.Attrs().Index, prio, handle, prog.FD(), true, actions...)
}

// delFilter deletes the filter with prio and handle from l's clsact hook of
// this direction; one that is not there is no error.
func (b *base) delFilter(l netlink.Link, prio uint16, handle uint32) error {
	f := &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: l.Attrs().Index, Parent: b.hook(),
		Priority: prio, Handle: handle, Protocol: unix.ETH_P_ALL}}
	if err := b.h.FilterDel(f); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// addMarkFilter sends, over sock, the cls_bpf filter running prog on hook
// of interface idx with an act_mirred redirect to ifb.
func addMarkFilter(sock *nl.SocketHandle, hook uint32, idx, prog, ifb int) error {
	return addBPFFilter(sock, hook, idx, FilterPrio, 1, prog, false, netlink.NewMirredAction(ifb))
}

// addBPFFilter sends a cls_bpf filter (not direct action) with tc actions,
// which netlink.BpfFilter cannot carry. replace allows changing an existing
// filter with the same priority and handle.
func addBPFFilter(sock *nl.SocketHandle, hook uint32, idx int, prio uint16, handle uint32, prog int, replace bool, actions ...netlink.Action) error {
	flags := unix.NLM_F_CREATE | unix.NLM_F_EXCL | unix.NLM_F_ACK
	if replace {
		flags = unix.NLM_F_CREATE | unix.NLM_F_ACK
	}
	req := nl.NewNetlinkRequest(unix.RTM_NEWTFILTER, flags)
	req.AddData(&nl.TcMsg{Family: nl.FAMILY_ALL, Ifindex: int32(idx), Handle: handle, Parent: hook,
		Info: netlink.MakeHandle(prio, nl.Swap16(unix.ETH_P_ALL))})
	req.AddData(nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated("bpf")))
	opts := nl.NewRtAttr(nl.TCA_OPTIONS, nil)
	opts.AddRtAttr(nl.TCA_BPF_FD, nl.Uint32Attr(uint32(prog)))
	opts.AddRtAttr(nl.TCA_BPF_NAME, nl.ZeroTerminated(FilterName))
	opts.AddRtAttr(nl.TCA_BPF_FLAGS, nl.Uint32Attr(0))
	act := opts.AddRtAttr(nl.TCA_BPF_ACT, nil)
	if err := netlink.EncodeActions(act, actions); err != nil {
		return err
	}
	req.AddData(opts)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: sock}
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}
