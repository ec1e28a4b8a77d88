#ifndef KONDATE_CMPI_SHIM_H
#define KONDATE_CMPI_SHIM_H

// OpenMPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE, ...) are macros over addresses of
// library globals, which Swift cannot import; these inline functions hand them over as values.
#include <mpi.h>

static inline MPI_Comm kondate_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm kondate_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype kondate_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype kondate_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype kondate_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype kondate_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op kondate_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op kondate_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op kondate_mpi_min(void) { return MPI_MIN; }
static inline void *kondate_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler kondate_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Status *kondate_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline int kondate_mpi_success(void) { return MPI_SUCCESS; }
static inline int kondate_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int kondate_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int kondate_mpi_max_library_version_string(void) { return MPI_MAX_LIBRARY_VERSION_STRING; }

#endif
