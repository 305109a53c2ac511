//go:build linux

package tc

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/chadthrottle/chadthrottle/backends"
	"github.com/chadthrottle/chadthrottle/backends/kernel/cgroupv2"
)

// inScratchNetns runs fn in a new, empty network namespace that disappears
// afterwards. The OS thread that entered it is thrown away.
func inScratchNetns(fn func(h *netlink.Handle) error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if _, err := netns.New(); err != nil {
			errc <- fmt.Errorf("create a scratch network namespace (needs CAP_SYS_ADMIN): %w", err)
			return
		}
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			errc <- fmt.Errorf("open netlink in a scratch namespace: %w", err)
			return
		}
		defer h.Close()
		lo, err := h.LinkByName("lo")
		if err == nil {
			err = h.LinkSetUp(lo)
		}
		if err != nil {
			errc <- fmt.Errorf("bring up lo in a scratch namespace: %w", err)
			return
		}
		errc <- fn(h)
	}()
	return <-errc
}

// probeShaping checks, in a scratch namespace, everything a shaper of
// direction dir does: load the BPF programs, create an IFB device with an
// HTB root, a class and the to_class classifier, and put the mark filter
// with its act_mirred redirect on clsact.
func probeShaping(dir direction) error {
	if os.Geteuid() != 0 {
		return backends.Unavailable("needs root (CAP_NET_ADMIN, CAP_BPF)")
	}
	if err := cgroupv2.Probe(); err != nil {
		return err
	}
	var objs classifyObjects
	if err := loadClassifyObjects(&objs, nil); err != nil {
		return backends.Unavailable("the kernel refused the BPF classifier (needs tc BPF programs with bpf_skb_cgroup_id, bpf_get_socket_cookie, bpf_sk_lookup_tcp/udp, bpf_probe_read_kernel and BTF): %v", err)
	}
	defer objs.Close()
	prog, hook := objs.MarkEgress, uint32(netlink.HANDLE_MIN_EGRESS)
	if dir == ingress {
		prog, hook = objs.MarkIngress, netlink.HANDLE_MIN_INGRESS
	}
	return inScratchNetns(func(h *netlink.Handle) error {
		lo, _ := h.LinkByName("lo")
		la := netlink.NewLinkAttrs()
		la.Name = IFBPrefix + "probe"
		if err := h.LinkAdd(&netlink.Ifb{LinkAttrs: la}); err != nil {
			return backends.Unavailable("cannot create an IFB device (kernel lacks IFB?): %v", err)
		}
		ifb, err := h.LinkByName(la.Name)
		if err != nil {
			return fmt.Errorf("find probe ifb: %w", err)
		}
		root := netlink.MakeHandle(0x1, 0)
		if err := h.QdiscAdd(netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: ifb.Attrs().Index, Parent: netlink.HANDLE_ROOT, Handle: root})); err != nil {
			return backends.Unavailable("cannot add an HTB qdisc (kernel lacks sch_htb?): %v", err)
		}
		c := netlink.NewHtbClass(netlink.ClassAttrs{LinkIndex: ifb.Attrs().Index, Parent: root, Handle: netlink.MakeHandle(1, 2)},
			netlink.HtbClassAttrs{Rate: 8_000_000})
		if err := h.ClassAdd(c); err != nil {
			return backends.Unavailable("cannot add an HTB class: %v", err)
		}
		f := &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: ifb.Attrs().Index, Parent: root,
			Priority: 1, Protocol: unix.ETH_P_ALL}, ClassId: root, Fd: objs.ToClass.FD(), Name: FilterName, DirectAction: true}
		if err := h.FilterAdd(f); err != nil {
			return backends.Unavailable("cannot attach a cls_bpf classifier (kernel lacks cls_bpf?): %v", err)
		}
		if err := h.QdiscAdd(clsact(lo.Attrs().Index)); err != nil {
			return backends.Unavailable("cannot add a clsact qdisc (kernel lacks NET_SCH_INGRESS?): %v", err)
		}
		sock, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("open netlink in a scratch namespace: %w", err)
		}
		defer sock.Close()
		if err := addMarkFilter(&nl.SocketHandle{Socket: sock}, hook, lo.Attrs().Index, prog.FD(), ifb.Attrs().Index); err != nil {
			return backends.Unavailable("cannot add a cls_bpf filter with an act_mirred redirect (kernel lacks act_mirred?): %v", err)
		}
		return nil
	})
}

// ProbeUpload says whether tc_htb can work here.
func ProbeUpload(backends.Options) error { return probeShaping(egress) }

// ProbeDownload says whether ifb_tc can work here.
func ProbeDownload(backends.Options) error { return probeShaping(ingress) }

// tcU32Terminal is TC_U32_TERMINAL from linux/pkt_cls.h.
const tcU32Terminal = 1

// ProbePolice says whether tc_police can work here: it tries to create a
// police action (act_police) in a scratch namespace.
func ProbePolice(backends.Options) error {
	if os.Geteuid() != 0 {
		return backends.Unavailable("needs root (CAP_NET_ADMIN)")
	}
	return inScratchNetns(func(h *netlink.Handle) error {
		lo, _ := h.LinkByName("lo")
		if err := h.QdiscAdd(clsact(lo.Attrs().Index)); err != nil {
			return backends.Unavailable("cannot add a clsact qdisc (kernel lacks NET_SCH_INGRESS?): %v", err)
		}
		p := netlink.NewPoliceAction()
		p.Rate = 125000
		p.Burst = 16000
		p.ExceedAction = netlink.TC_POLICE_SHOT
		f := &netlink.U32{
			FilterAttrs: netlink.FilterAttrs{LinkIndex: lo.Attrs().Index, Parent: netlink.HANDLE_MIN_INGRESS,
				Priority: 1, Protocol: unix.ETH_P_ALL},
			Sel:     &netlink.TcU32Sel{Flags: tcU32Terminal, Nkeys: 1, Keys: []netlink.TcU32Key{{}}},
			Actions: []netlink.Action{p},
		}
		if err := h.FilterAdd(f); err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
				return backends.Unavailable("kernel has no act_police (creating a tc police action failed: %v)", err)
			}
			return backends.Unavailable("cannot create a tc police action: %v", err)
		}
		return nil
	})
}
