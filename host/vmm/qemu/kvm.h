/* Is KVM usable on this host?  Opening /dev/kvm proves little: on the development machines it
 * is kvm_pvm (a nested page-table-based hypervisor) where KVM_CREATE_VM works but a Linux
 * guest cannot boot in useful time (../shared/spec/qemu-harness.md §0).  So the qemu backend
 * uses KVM (accel "auto") only when a tiny real guest runs to completion: a child process
 * creates a VM with one page of real-mode code (a 65535-iteration loop, one port write,
 * HLT) and must see exactly those exits within the time limit; a provider that is known not
 * to run Linux guests (kvm_pvm) is refused before that. */
#ifndef FERRY_HOST_VMM_QEMU_KVM_H
#define FERRY_HOST_VMM_QEMU_KVM_H

#include "common/err.h"

#define QEMU_KVM_DEV           "/dev/kvm"
#define QEMU_KVM_PROBE_TIMEOUT 2.0 /* seconds for the whole probe child */

/* Quick checks (no VM created): 0 when a probe is worth running; -ENOENT/-EACCES when dev
 * cannot be opened; -ENOTSUP when `sysfs`/module/kvm_pvm exists.  e says why. */
int qemu_kvm_precheck(const char *dev, const char *sysfs, struct err *e);

/* The probe body, for a child process (it may block forever on a broken KVM): create a VM
 * on dev, run the tiny guest, check its exits.  0 when it ran as it must, else -errno with
 * e naming the step that failed. */
int qemu_kvm_run_tiny_guest(const char *dev, struct err *e);

#endif
