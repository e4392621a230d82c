/*
 * inotify-queued: an inotify instance watching <workdir>/dir for IN_CREATE, with the event of a file
 * created there queued and never read. Cryopod cannot put that event into a restored instance, so its
 * preflight and its dump must refuse the fd by name; the process must run on untouched (the event is
 * still there for it to read at check time: PASS).
 */
#include "victim.h"
#include <sys/inotify.h>

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	char dir[PATH_MAX], file[PATH_MAX + 8];
	snprintf(dir, sizeof dir, "%s/dir", victim_dir);
	snprintf(file, sizeof file, "%s/new", dir);
	int in = inotify_init1(IN_NONBLOCK);
	if (in < 0 || mkdir(dir, 0700) != 0 || inotify_add_watch(in, dir, IN_CREATE) != 1 || close(open(file, O_CREAT | O_WRONLY, 0600)) != 0)
		exit(4);
	victim_ready();
	unsigned long long n = 0;
	while (!victim_check_requested()) {
		victim_progress(++n);
		victim_sleep_ms(20);
	}
	char buf[4096] __attribute__((aligned(8)));
	ssize_t got = read(in, buf, sizeof buf);
	struct inotify_event *ev = (void *)buf;
	if (got < (ssize_t)sizeof *ev || ev->wd != 1 || !(ev->mask & IN_CREATE) || strcmp(ev->name, "new") != 0)
		fail("the queued IN_CREATE of dir/new is not there to read");
	victim_finish();
}
