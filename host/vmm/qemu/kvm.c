/* The KVM probe of kvm.h: a real guest, however small, must run. */
#include "host/vmm/qemu/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xalloc.h"

#define GUEST_ADDR  0x1000
#define PROBE_PORT  0x10
#define PROBE_VALUE 0x42

int qemu_kvm_precheck(const char *dev, const char *sysfs, struct err *e)
{
	int fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, -errno, "open %s", dev);
	close(fd);
	_cleanup_free_ char *pvm = xasprintf("%s/module/kvm_pvm", sysfs);
	struct stat st;
	if (stat(pvm, &st) == 0)
		return err_set(e, -ENOTSUP,
		               "kvm is kvm_pvm (nested PVM), which does not run Linux guests in "
		               "useful time");
	return 0;
}

static int run_guest(int kvm, void *mem, struct err *e);
static int run_vcpu(int vcpu, struct kvm_run *run, struct err *e);

int qemu_kvm_run_tiny_guest(const char *dev, struct err *e)
{
	_cleanup_close_ int kvm = open(dev, O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return err_sys(e, -errno, "open %s", dev);
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		return err_set(e, -ENOTSUP, "kvm: unexpected API version");
	void *mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return err_sys(e, -errno, "kvm: guest memory");
	int r = run_guest(kvm, mem, e);
	munmap(mem, 0x1000);
	return r;
}

static int run_guest(int kvm, void *mem, struct err *e)
{
	/* mov cx, 0xffff; l: dec cx; jnz l; mov al, 0x42; out 0x10, al; hlt */
	static const uint8_t code[] = {0xb9, 0xff,        0xff, 0x49,       0x75, 0xfd,
	                               0xb0, PROBE_VALUE, 0xe6, PROBE_PORT, 0xf4};
	_cleanup_close_ int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return err_sys(e, -errno, "kvm: KVM_CREATE_VM");
	memcpy(mem, code, sizeof(code));
	struct kvm_userspace_memory_region region = {
	    .slot = 0,
	    .guest_phys_addr = GUEST_ADDR,
	    .memory_size = 0x1000,
	    .userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return err_sys(e, -errno, "kvm: KVM_SET_USER_MEMORY_REGION");
	_cleanup_close_ int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		return err_sys(e, -errno, "kvm: KVM_CREATE_VCPU");
	int sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz < (int)sizeof(struct kvm_run))
		return err_set(e, -ENOTSUP, "kvm: bad vcpu mmap size");
	struct kvm_run *run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		return err_sys(e, -errno, "kvm: map the vcpu");
	int r = run_vcpu(vcpu, run, e);
	munmap(run, (size_t)sz);
	return r;
}

static int run_vcpu(int vcpu, struct kvm_run *run, struct err *e)
{
	struct kvm_sregs sregs;
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		return err_sys(e, -errno, "kvm: KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		return err_sys(e, -errno, "kvm: KVM_SET_SREGS");
	struct kvm_regs regs = {.rip = GUEST_ADDR, .rflags = 2};
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		return err_sys(e, -errno, "kvm: KVM_SET_REGS");
	bool saw_io = false;
	for (int i = 0; i < 16; i++) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0)
			return err_sys(e, -errno, "kvm: KVM_RUN");
		if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_OUT &&
		    run->io.port == PROBE_PORT && run->io.size == 1 &&
		    ((const uint8_t *)run)[run->io.data_offset] == PROBE_VALUE) {
			saw_io = true;
			continue;
		}
		if (run->exit_reason == KVM_EXIT_HLT && saw_io)
			return 0;
		return err_set(e, -ENOTSUP, "kvm: the probe guest exited with reason %u",
		               run->exit_reason);
	}
	return err_set(e, -ENOTSUP, "kvm: the probe guest never halted");
}
