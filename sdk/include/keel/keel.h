/*
 * keel/keel.h: the umbrella header of libkeel, keel's public C API.
 *
 * keel is durable execution for teams that run Kafka: workflows are plain
 * C functions whose histories live in compacted Kafka topics. This header
 * includes every public module header.
 */
#ifndef KEEL_KEEL_H
#define KEEL_KEEL_H

#include "keel/client.h"
#include "keel/codec.h"
#include "keel/config.h"
#include "keel/error.h"
#include "keel/log.h"
#include "keel/partition.h"
#include "keel/replay.h"
#include "keel/topics.h"
#include "keel/version.h"
#include "keel/activity.h"
#include "keel/testing.h"
#include "keel/workflow.h"
#include "keel/worker.h"

#endif
