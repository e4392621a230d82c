/* For the file layer's victims whose check has nothing of their own to verify: ready, progress every
 * 20 ms until the check is requested, then PASS. */
#ifndef CRYOPOD_FILES_IDLE_H
#define CRYOPOD_FILES_IDLE_H
#include "victim.h"

__attribute__((noreturn)) static inline void idle_until_check(void)
{
	victim_ready();
	unsigned long long n = 0;
	while (!victim_check_requested()) {
		victim_progress(++n);
		victim_sleep_ms(20);
	}
	victim_finish();
}
#endif
